"""`tag …`: leads describe a tag and give example questions; anyone reads them."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot.data.transfer import import_tags
from bot.db.models import ExampleSource, LabelledExample, Tag
from bot.router import Router
from bot.services import Services
from tests.helpers import audit_rows, notices, say


def _lead_examples(services: Services, name: str) -> list[str]:
    with services.db.unit_of_work() as session:
        return list(
            session.scalars(
                select(LabelledExample.text)
                .join(Tag, Tag.id == LabelledExample.tag_id)
                .where(Tag.name == name, LabelledExample.source == ExampleSource.LEAD)
                .order_by(LabelledExample.id)
            )
        )


def test_a_lead_describes_a_tag_and_anyone_reads_it(demo: Services, router: Router) -> None:
    reply = say(
        demo,
        router,
        "priya",
        "tag",
        "describe late fees | Charges for paying after the due date | "
        "why was I charged for paying late; can the late fee be waived",
    )
    assert notices(reply)[0].severity == "success", reply
    assert "2 example questions" in notices(reply)[0].text
    shown = say(demo, router, "alex", "tag", "show late fees")
    text = " ".join(e.text for e in shown.elements)  # type: ignore[union-attr]
    assert "late fees: Charges for paying after the due date" in text
    assert "can the late fee be waived" in text
    # Examples again, the description left empty: the description stays.
    say(demo, router, "priya", "tag", "describe late fees | | a fee after a missed payment")
    assert _lead_examples(demo, "late fees") == [
        "Charges for paying after the due date",
        "a fee after a missed payment",
    ]


def test_only_leads_describe_tags_and_bad_input_is_explained(
    demo: Services, router: Router
) -> None:
    refused = say(demo, router, "alex", "tag", "describe refunds | Mine")
    assert notices(refused)[0].severity == "error"
    assert "Only a lead or an admin may describe a tag" in notices(refused)[0].text
    assert any(a.action == "describe_tag" for a in audit_rows(demo))  # refusal audited
    assert "Did you mean" in notices(say(demo, router, "alex", "tag", "show refundz"))[0].text
    assert "Usage" in notices(say(demo, router, "alex", "tag", "describe refunds"))[0].text
    long = say(demo, router, "priya", "tag", "describe refunds | " + "x" * 400)
    assert "one line of at most" in notices(long)[0].text
    assert _lead_examples(demo, "refunds") == []


def test_a_tags_file_gives_descriptions_and_examples(demo: Services, tmp_path: Path) -> None:
    path = tmp_path / "tags.csv"
    path.write_text(
        "name,description,examples\n"
        "refunds,Money back to the customer,refund to a closed card;partial refund\n"
        "eSIM transfer,Moving an eSIM to a new phone,\n"
        ",no name,\n"
    )
    report = import_tags(demo.db, path, demo.clock())
    assert (report.created, report.updated) == (1, 1)
    assert [line for line, _ in report.errors] == [4]
    assert _lead_examples(demo, "refunds") == [
        "Money back to the customer",
        "refund to a closed card",
        "partial refund",
    ]
    with demo.db.unit_of_work() as session:
        tag = session.scalar(select(Tag).where(Tag.name == "esim transfer"))
        assert tag is not None and tag.description == "Moving an eSIM to a new phone"
    again = import_tags(demo.db, path, demo.clock())  # the same file twice: nothing new
    assert (again.created, again.updated) == (0, 2)
    assert len(_lead_examples(demo, "refunds")) == 3
