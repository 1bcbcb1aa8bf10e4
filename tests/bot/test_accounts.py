"""One person everywhere: accounts linked by id and by e-mail, doubt refused, merges."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from adapters.cli import main
from bot.data.transfer import export_people, import_people
from bot.db.models import (
    AccountConflict,
    AuditEntry,
    HelpfulVote,
    Huddle,
    HuddleParticipant,
    Identity,
    KnowledgeEntry,
    Outbox,
    Person,
    Presence,
    QueryLog,
    Skill,
    Status,
    Tag,
)
from bot.router import Router
from bot.services import Services, accounts, knowledge, people, presence
from bot.services.accounts import Account
from tests.conftest import NOW
from tests.helpers import audit_rows, cards, notices, say

IMPORTED = (
    "id,name,team,timezone,skills,role,hours,verified,email,slack,teams\n"
    "maria.s,Maria Santos,Billing,Europe/Lisbon,refunds:4,agent,08:00-16:00,refunds,"
    "Maria.Santos@Example.com,,\n"
    "E0042,Kwame Mensah,Billing,Africa/Accra,chargebacks:5,agent,09:00-17:00,chargebacks,"
    "kwame@example.com,u0042,\n"
)


def imported(services: Services, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(IMPORTED, encoding="utf-8")
    assert import_people(services.db, path, NOW).ok


def link(services: Services, *found: Account) -> list[str]:
    with services.db.unit_of_work() as session:
        return [p.key for p in accounts.link_accounts(session, found, NOW, seen_in="test")]


def conflicts(services: Services) -> list[str]:
    with services.db.reading() as session:
        return [accounts.describe(row) for row in accounts.open_conflicts(session)]


def test_an_account_links_by_its_id_in_any_case_and_by_its_email(
    services: Services, tmp_path: Path
) -> None:
    imported(services, tmp_path)
    keys = link(
        services,
        # The lead typed u0042; Slack says U0042.
        Account("slack", "U0042", "Kwame M.", "someone.else@example.com", "UTC"),
        # No Slack id in the file: the e-mail, in another case, finds her.
        Account("slack", "U0007", "Maria S.", "maria.santos@EXAMPLE.com", "America/New_York"),
        Account("slack", "U0099", "New Hire", "new.hire@example.com", key_hint="newhire"),
    )
    assert keys == ["e0042", "maria.s", "newhire"]
    with services.db.reading() as session:
        maria = people.by_key(session, "maria.s")
        # The lead's name and zone stand; the platform renames only people it brought.
        assert (maria.display_name, maria.timezone) == ("Maria Santos", "Europe/Lisbon")
        assert people.by_identity(session, "slack", "U0007").key == "maria.s"
        # The imported spelling is kept, and found in Slack's.
        assert people.by_identity(session, "slack", "u0042").key == "e0042"
        newcomer = people.by_key(session, "newhire")
        assert (newcomer.email, newcomer.origin) == ("new.hire@example.com", "slack")
        assert session.scalar(select(func.count()).select_from(Person)) == 3
    # Linking again changes nothing: the same people, no one new.
    assert link(services, Account("slack", "U0007", "Maria S.", "maria.santos@example.com")) == [
        "maria.s"
    ]
    assert conflicts(services) == []


def test_accounts_without_an_email_are_linked_by_id_alone(services: Services) -> None:
    first = link(services, Account("slack", "UGUEST", "Guest Person", None, key_hint="guest"))
    again = link(services, Account("slack", "UGUEST", "Guest Renamed"))
    assert first == again == ["guest"]
    with services.db.reading() as session:
        assert people.by_key(session, "guest").display_name == "Guest Renamed"


def test_a_linked_accounts_email_is_taken_when_free_and_followed_only_for_its_own(
    services: Services, tmp_path: Path
) -> None:
    imported(services, tmp_path)
    link(
        services,
        Account("slack", "UNEW", "New Hire", "new@example.com", key_hint="newhire"),
        Account("slack", "UKWAME", "Kwame", None),  # no e-mail shown yet
    )
    # Kwame's link came from the file (u0042 is another account): UKWAME is someone new.
    link(
        services,
        # Slack brought newhire: their e-mail follows Slack's.
        Account("slack", "UNEW", "New Hire", "New.Hire@Example.com"),
        # A person without an e-mail takes the account's, when nobody has it.
        Account("slack", "UKWAME", "Kwame", "kwame.other@example.com"),
        # The lead's e-mail for someone imported stays.
        Account("slack", "U0042", "Kwame M.", "kwame.m@personal.example"),
    )
    with services.db.reading() as session:
        assert people.by_key(session, "newhire").email == "New.Hire@Example.com"
        assert people.by_identity(session, "slack", "UKWAME").email == "kwame.other@example.com"
        assert people.by_key(session, "e0042").email == "kwame@example.com"
    assert conflicts(services) == []
    # An e-mail someone else has: listed for admins, once, and nothing moves.
    for _ in range(2):
        link(services, Account("slack", "UNEW", "New Hire", "maria.santos@example.com"))
    assert conflicts(services) == ["newhire claims the e-mail maria.santos@example.com of maria.s"]
    with services.db.reading() as session:
        assert people.by_key(session, "newhire").email == "New.Hire@Example.com"
        assert people.by_identity(session, "slack", "UNEW").key == "newhire"


def test_an_account_is_current_exactly_when_linking_it_would_change_nothing(
    services: Services, tmp_path: Path
) -> None:
    imported(services, tmp_path)
    link(
        services,
        Account("slack", "UNEW", "New Hire", "new@example.com", "Asia/Tokyo", "newhire"),
        Account("slack", "U0007", "Maria S.", "maria.santos@example.com"),
    )
    seen = [
        Account("slack", "UNEW", "New Hire", "new@example.com", "Asia/Tokyo"),  # as it was
        Account("slack", "U0007", "Maria Renamed", "m@elsewhere.example", "UTC"),  # imported
        Account("slack", "UNEW", "New Name", "new@example.com", "Asia/Tokyo"),
        Account("slack", "UNEW", "New Hire", "new@example.com", "Europe/Paris"),
        Account("slack", "UNEW", "New Hire", "other@example.com", "Asia/Tokyo"),
        Account("slack", "UNEW", "New Hire", None, "Asia/Tokyo", deleted=True),
        Account("slack", "UNKNOWN", "Somebody"),
    ]
    with services.db.reading() as session:
        current = accounts.is_current(session, seen, NOW)
    assert current == [True, True, False, False, False, False, False]

    def rows(session: Any) -> set[tuple[Any, ...]]:
        return set(
            session.execute(
                select(
                    Person.key,
                    Person.display_name,
                    Person.timezone,
                    Person.deleted_at,
                    Person.email,
                )
            ).all()
        ) | set(session.execute(select(Identity.person_id, Identity.external_id)).all())

    for account, expected in zip(seen, current, strict=True):
        with services.db.unit_of_work() as session:
            before = rows(session)
            accounts.link_accounts(session, [account], NOW, seen_in="test")
            changed = rows(session) != before
            session.rollback()
        assert changed is not expected, account


def test_a_batch_numbers_only_the_handles_already_taken(services: Services) -> None:
    keys = link(
        services,
        *(Account("slack", f"U{n}", f"Agent {n}", key_hint=f"agent{n}") for n in range(3)),
        Account("slack", "UA", "Ann", key_hint="ann"),
        Account("slack", "UB", "Ann B", key_hint="ann"),
        Account("slack", "UC", "Ann C", key_hint="ann2"),
    )
    assert keys == ["agent0", "agent1", "agent2", "ann", "ann2", "ann22"]
    assert link(services, Account("slack", "UD", "Ann D", key_hint="ann")) == ["ann3"]


def test_a_second_account_for_someone_who_has_one_is_refused_once_and_listed(
    services: Services, tmp_path: Path
) -> None:
    imported(services, tmp_path)
    doubtful = Account("slack", "U0666", "Kwame Again", "KWAME@example.com", key_hint="kwame2")
    assert link(services, doubtful) == ["kwame2"]  # not merged into e0042
    assert link(services, doubtful) == ["kwame2"]  # the daily sync sees it again
    listed = conflicts(services)
    assert len(listed) == 1 and "U0666" in listed[0] and "e0042" in listed[0]
    refused = [r for r in audit_rows(services) if r.action == "link_account" and not r.allowed]
    assert len(refused) == 1 and refused[0].actor_label == "test"
    with services.db.reading() as session:
        assert people.by_key(session, "kwame2").email is None  # one e-mail, one person


def test_a_doubt_seen_again_is_listed_and_audited_once(services: Services, tmp_path: Path) -> None:
    imported(services, tmp_path)
    with services.db.unit_of_work() as session:
        holder = people.by_key(session, "maria.s")
        seen = [
            accounts.conflict(
                session,
                accounts.EMAIL_TAKEN,
                seen_in="test",
                now=NOW,
                email="maria.santos@example.com",
                holder=holder,
                claimed_by="line 3: maria2",
            )
            for _ in range(2)
        ]
    assert seen == [True, False]
    refused = [r for r in audit_rows(services) if r.action == "link_account"]
    assert len(refused) == 1 and len(conflicts(services)) == 1


def test_an_import_that_claims_what_another_holds_fails_that_row(
    services: Services, tmp_path: Path
) -> None:
    imported(services, tmp_path)
    link(services, Account("slack", "U0007", "Maria S.", "maria.santos@example.com"))
    path = tmp_path / "claims.csv"
    path.write_text(
        "id,name,email,slack\n"
        "thief,Thief,MARIA.SANTOS@example.com,\n"  # line 2: her e-mail
        "other,Other,,U0007\n"  # line 3: her Slack account
        "twin,Twin,twin@example.com,\n"
        "twin2,Twin Two,twin@example.com,\n",  # line 5: the e-mail line 4 just claimed
        encoding="utf-8",
    )
    report = import_people(services.db, path, NOW)
    assert [line for line, _ in report.errors] == [2, 3, 5]
    assert "maria.s" in report.errors[0][1] and "U0007" in report.errors[1][1]
    assert report.created == 1
    with services.db.reading() as session:
        assert people.by_key(session, "thief") is None
        assert people.by_identity(session, "slack", "U0007").key == "maria.s"
        rows = session.scalars(select(AccountConflict)).all()
    assert {r.reason for r in rows} == {accounts.EMAIL_TAKEN, accounts.LINKED_ELSEWHERE}
    assert len(rows) == 3
    refused = [r for r in audit_rows(services) if r.action == "link_account" and not r.allowed]
    assert len(refused) == 3


def test_a_deactivated_account_leaves_suggestions_and_its_knowledge_stays(
    demo: Services, router: Router
) -> None:
    with demo.db.unit_of_work() as session:
        maria = people.by_key(session, "maria")
        accounts.link_by_hand(session, maria, "slack", "UMARIA", actor_label="test")
        written = [e.id for e in session.scalars(select(KnowledgeEntry)) if maria in e.authors]
    assert written
    assert "maria" in {c.key for c in cards(say(demo, router, "alex", "whoknows", "refunds"))}
    link(demo, Account("slack", "UMARIA", "Maria Santos", deleted=True))
    assert "maria" not in {c.key for c in cards(say(demo, router, "alex", "whoknows", "refunds"))}
    with demo.db.reading() as session:
        for entry_id in written:
            assert "maria" in [a.key for a in session.get(KnowledgeEntry, entry_id).authors]
    # Still on Teams: one platform letting her go does not remove her.
    with demo.db.unit_of_work() as session:
        omar = people.by_key(session, "omar")
        accounts.link_by_hand(session, omar, "slack", "UOMAR", actor_label="test")
        accounts.link_by_hand(session, omar, "teams", "aad-omar", actor_label="test")
    link(demo, Account("slack", "UOMAR", "Omar", deleted=True))
    with demo.db.reading() as session:
        assert people.by_key(session, "omar") is not None


# Every column that refers to a person, and so what a merge moves. A new one fails
# here: make sure `accounts.merge` (and `forgetting.forget`) handle it, then add it.
PERSON_REFERENCES = set(
    (
        "identity.person_id",
        "skill.person_id",
        "skill.verified_by_id",
        "presence.person_id",
        "huddle.requester_id",
        "huddle.closed_by_id",
        "huddle_participant.person_id",
        "knowledge_author.person_id",
        "helpful_vote.person_id",
        "outbox.person_id",
        "query_log.person_id",
        "audit_log.actor_id",
        "account_conflict.holder_id",
        "account_conflict.claimant_id",
        "learning_goal.person_id",
        "huddle_observer.person_id",
        "mentorship.learner_id",
        "mentorship.mentor_id",
        "mentorship.paired_by_id",
        # A lead's word on a suggested skill: the person's, and who decided.
        "skill_decision.person_id",
        "skill_decision.decided_by_id",
        # What use taught the tag models: who helped, and who asked.
        "labelled_example.person_id",
        "labelled_example.asker_id",
    )
)


def test_every_reference_to_a_person_is_known_to_the_merge() -> None:
    found = {f"{c.table.name}.{c.name}" for c in accounts.person_references()}
    assert found == PERSON_REFERENCES


def test_merge_moves_everything_to_the_person_kept(demo: Services, router: Router) -> None:
    # Priya and a second record of her, made by Slack before the lead's import linked.
    with demo.db.unit_of_work() as session:
        priya = people.by_key(session, "priya")
        accounts.set_email(priya, "priya@example.com")
        copy = accounts.provision(session, "slack", "UPRIYA", name="Priya S", key_hint="priya2")
        copy.team_id = priya.team_id
        accounts.link_by_hand(session, copy, "teams", "aad-priya", actor_label="test")
        presence.set_status(session, copy, Status.BUSY, NOW)
        copy_id = copy.id
    for text in ("tag chargebacks:5", "tag refunds:5", "tag roaming:2"):
        say(demo, router, "priya2", "expertise", text)
    say(demo, router, "priya2", "whoknows", "roaming charges abroad")
    huddle = say(demo, router, "priya2", "huddle", "roaming refund @maria")
    assert not [n for n in notices(huddle) if n.severity in {"warning", "error"}], huddle
    say(demo, router, "priya", "kb", "helpful 3")
    say(demo, router, "priya2", "kb", "helpful 3")
    say(demo, router, "priya2", "kb", "helpful 4")
    with demo.db.unit_of_work() as session:
        priya = people.by_key(session, "priya")
        entry = session.get(KnowledgeEntry, 3)
        entry.authors = [*entry.authors, session.get(Person, copy_id)]  # she wrote #3 as both
        held = {s.tag.name: (s.level, s.verified) for s in priya.skills}
        conflicted = accounts.conflict(
            session,
            accounts.HAS_OTHER_ACCOUNT,
            seen_in="test",
            now=NOW,
            platform="slack",
            external_id="UPRIYA",
            holder=priya,
            claimant=session.get(Person, copy_id),
        )
        assert conflicted
        keep_id = priya.id
    assert held["refunds"] == (5, True) and "roaming" not in held

    assert main(["--db", demo.settings.database_url, "people", "merge", "priya", "priya2"]) == 0

    with demo.db.reading() as session:
        assert session.get(Person, copy_id) is None
        priya = session.get(Person, keep_id)
        skills = {s.tag.name: (s.level, s.verified) for s in priya.skills}
        # The higher level and any verification; the copy's own skills move over.
        assert skills["refunds"] == (5, True)
        assert skills["roaming"] == (2, False) and skills["chargebacks"][0] == 5
        assert {(i.platform, i.external_id) for i in priya.identities} >= {
            ("slack", "UPRIYA"),
            ("teams", "aad-priya"),
            ("console", "priya"),
        }
        for column in accounts.person_references():
            left = session.scalar(
                select(func.count()).select_from(column.table).where(column == copy_id)
            )
            assert left == 0, f"{column.table.name}.{column.name} still names the copy"
        assert session.scalar(select(Huddle.requester_id).order_by(Huddle.id.desc())) == keep_id
        assert (
            session.scalar(
                select(func.count())
                .select_from(HelpfulVote)
                .where(HelpfulVote.person_id == keep_id)
            )
            == 2
        )
        assert [a.key for a in session.get(KnowledgeEntry, 3).authors].count("priya") == 1
        assert session.scalars(select(QueryLog.person_id)).all()[-1] == keep_id
        assert session.scalar(select(func.count()).select_from(AccountConflict)) == 0
        assert session.scalar(select(Presence.person_id).where(Presence.person_id == keep_id))
        merged = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "merge_people")
        ).all()
        assert [(m.target, m.actor_label.startswith("cli:")) for m in merged] == [
            ("person:priya", True)
        ]
        assert session.scalar(select(func.count()).select_from(Outbox)) >= 1
        assert not session.scalars(
            select(HuddleParticipant).where(HuddleParticipant.person_id == copy_id)
        ).all()
        assert session.scalar(select(Skill.id).where(Skill.verified_by_id == copy_id)) is None


def test_links_by_hand_from_the_command_line_refuse_an_account_held_elsewhere(
    demo: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    url = demo.settings.database_url
    assert (
        main(
            [
                "--db",
                url,
                "people",
                "link",
                "maria",
                "--slack",
                "UMARIA",
                "--email",
                "Maria@Example.com",
            ]
        )
        == 0
    )
    assert main(["--db", url, "people", "link", "omar", "--slack", "umaria"]) == 1
    err = capsys.readouterr().err
    assert "already linked to maria" in err and "people merge omar maria" in err
    assert main(["--db", url, "people", "link", "omar", "--email", "maria@example.COM"]) == 1
    assert "already the e-mail of maria" in capsys.readouterr().err
    assert main(["--db", url, "people", "link", "nobody", "--slack", "U1"]) == 1
    with demo.db.reading() as session:
        assert people.by_identity(session, "slack", "UMARIA").key == "maria"
        assert (
            session.scalar(select(Identity.person_id).where(Identity.external_id == "umaria"))
            is None
        )
    refused = [r for r in audit_rows(demo) if not r.allowed]
    assert {r.action for r in refused} == {"link_account", "set_email"}
    assert all(r.actor_label.startswith("cli:") for r in refused)
    assert main(["--db", url, "people", "conflicts"]) == 0
    assert "no conflicts" in capsys.readouterr().out


def test_exports_give_ids_back_as_they_were_given(services: Services, tmp_path: Path) -> None:
    imported(services, tmp_path)
    with services.db.reading() as session:
        out = StringIO()
        export_people(session, out, "csv")
    lines = out.getvalue().splitlines()
    assert lines[1].startswith("E0042,Kwame Mensah,") and lines[1].endswith(
        ",kwame@example.com,u0042,"
    )
    assert lines[2].endswith(",Maria.Santos@Example.com,,")


def test_one_person_on_both_platforms_is_ranked_once_with_the_evidence_of_both(
    demo: Services, router: Router, tmp_path: Path
) -> None:
    """Sam answers on Slack and on Teams: one person, one card, both answers counted."""
    path = tmp_path / "sam.csv"
    path.write_text(
        "id,name,team,timezone,email\nsam,Sam Okafor,Billing,Europe/London,sam@example.com\n",
        encoding="utf-8",
    )
    assert import_people(demo.db, path, NOW).ok
    on_slack = link(demo, Account("slack", "U0SAM", "Sam O.", email="SAM@example.com"))
    on_teams = link(demo, Account("teams", "aad-sam", "Sam Okafor", email="sam@example.com"))
    assert on_slack == on_teams == ["sam"]
    with demo.db.unit_of_work() as session:
        # "wifi calling" is held by nobody in the demo org: only Sam's answers speak.
        (tag,) = session.scalars(select(Tag).where(Tag.name == "wifi calling"))
        for platform, external_id, title in (
            ("slack", "U0SAM", "Wifi calling drops after a few minutes"),
            ("teams", "aad-sam", "Wifi calling not offered on the handset"),
        ):
            (identity,) = session.scalars(
                select(Identity).where(
                    Identity.platform == platform, Identity.external_id == external_id
                )
            )
            knowledge.add_entry(
                session, title, f"{title}: check the carrier settings.", [tag], [identity.person]
            )
    found = cards(say(demo, router, "alex", "whoknows", "wifi calling keeps dropping"))
    assert [c.key for c in found].count("sam") == 1
    with demo.db.reading() as session:
        sam = people.by_key(session, "sam")
        assert {i.platform for i in sam.identities} >= {"slack", "teams"}
        written = session.scalar(
            select(func.count())
            .select_from(KnowledgeEntry)
            .where(KnowledgeEntry.authors.any(Person.id == sam.id))
        )
    assert written == 2
