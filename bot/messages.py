"""Every user-visible sentence, in one place (and one day, translatable)."""

# Router
UNKNOWN_COMMAND = "I don't know the command '{word}'. Type `help` to see what I can do."
DID_YOU_MEAN = "I don't know '{word}'. Did you mean `{guess}`?"
UNKNOWN_ACTION = "That button has expired. Please ask again."
DATABASE_UNAVAILABLE = (
    "The database is briefly unavailable, so nothing was changed. Please try again in a moment."
)
INTERNAL_ERROR = "Something went wrong on our side and nothing was changed. Please try again."
TOO_LONG = "That is {length:,} characters; I read the first {limit:,}."

# Who knows
WHOKNOWS_EMPTY = "Tell me the topic, for example `whoknows refund for a prepaid top-up`."
WHOKNOWS_HEADER = "Who knows about “{query}”"
WHOKNOWS_ARTICLES = "Answers that may already cover it:"
WHOKNOWS_NOT_CONFIDENT = (
    "I could not find anyone who clearly knows about “{query}”. "
    "I have noted it as a knowledge gap for the leads."
)
WHOKNOWS_NEAREST = "Nearest topics: {tags}."
WHOKNOWS_NOBODY = "Nobody is tagged for this yet."
WHOKNOWS_HELPFUL_BUTTON = "Helpful"
WHOKNOWS_CONTACT_BUTTON = "Message"
WHOKNOWS_HELPFUL_THANKS = "Thanks: noted that {name} helped. whoknows learns from it."
WHOKNOWS_HELPFUL_AGAIN = "You already said {name} helped with this question."
WHOKNOWS_HELPFUL_BAD = "That button no longer points at a question."

# Learning from use, and tag descriptions
LEARNING_QUESTION_GONE = "That question is no longer kept, so it cannot be marked."
LEARNING_EXPERT_GONE = "That colleague is no longer here."
LEARNING_NOT_YOUR_QUESTION = "Only the person who asked can say who helped."
LEARNING_NOT_YOURSELF = "You cannot mark yourself as the one who helped."
LEARNING_DESCRIBE_NOT_ALLOWED = "Only a lead or an admin may describe a tag."
LEARNING_DESCRIPTION_TOO_LONG = "A tag's description is one line of at most {limit} characters."
LEARNING_TOO_MANY_EXAMPLES = "Give a tag at most {limit} example questions."
LEARNING_EXAMPLE_TOO_LONG = "An example question is at most {limit} characters."
TAG_USAGE = (
    "Usage: `tag show <tag>`, or (leads) `tag describe <tag> | one-line description "
    "| example question; another example`."
)
TAG_SHOWN = "{name}: {description}"
TAG_NO_DESCRIPTION = "{name} has no description yet."
TAG_EXAMPLES = "Example questions: {examples}"
TAG_DESCRIBED = "Saved the description of {name} and {count} example questions."
# The one-line reason on an expert card.
REASON_SKILL = "{tag} level {level}, {vouched}{via}"
REASON_VERIFIED_BY = "verified by {name}"
REASON_VERIFIED = "verified"
REASON_SELF_DECLARED = "self-declared"
REASON_VIA = {
    "alias": " (another name for what you asked)",
    "typo": " (close to what you typed)",
    "parent": " (part of what you asked)",
    "child": " (the broader topic)",
    "similar": " (close in meaning)",
    "evidence": " (colleagues with this skill answered similar questions)",
    "model": " (questions like yours were about this)",
}
REASON_WROTE = "wrote answers to similar questions"
# Freshness: a self-declared skill with no answer on it for a while counts less.
REASON_SELF_DECLARED_STALE = "self-declared, no answers on it for {days} days (counts less)"
# Earned: answers that back the question, on a topic the person is not tagged with.
REASON_EARNED = "earned: wrote answers to similar questions on {tag}, not tagged with it yet"
REASON_EARNED_UNTAGGED = "earned: wrote answers to similar questions, not tagged for them"
# How every renderer marks what a card's reason rests on (PersonCard.basis).
BASIS_MARK = {"verified": "✓", "self-declared": "✎", "earned": "★"}

# Expertise
EXPERTISE_USAGE = (
    "Usage: `expertise [show] [@person]`, `expertise tag [@person] tag[:level] …`, "
    "`expertise untag [@person] tag`, `expertise verify @person tag`, "
    "`expertise suggestions [@person]`, `expertise learn|unlearn <topic>`."
)
EXPERTISE_NONE = "{name} has no tagged expertise yet."
EXPERTISE_HEADER = "Expertise of {name}"
UNKNOWN_PERSON = "I don't know anyone called '{token}'."
BAD_ID_CHARACTER = (
    "'{what}' holds a control or invisible character ({char}, character {position}): remove it"
)
UNKNOWN_TAG = "There is no tag '{name}'."
UNKNOWN_TAG_SUGGEST = "There is no tag '{name}'. Did you mean {suggestions}?"
EMPTY_TAG = "the tag name is empty"
TAG_TOO_LONG = "a tag name is at most {limit} characters"
BAD_LEVEL = "'{level}' is not a level (use 1 to 5)"
NO_SUCH_SKILL = "{name} is not tagged with '{tag}'."
NOT_ALLOWED = "Only a lead of their team or an admin may {action} {name}'s expertise."
CANNOT_VERIFY_SELF = "Nobody verifies their own expertise: ask a lead of your team."
CANNOT_DECIDE_SELF = "Nobody decides on their own suggested skills: a lead of your team does."
IMPORT_LEADS_ONLY = "only a lead or an admin imports people"
IMPORT_LEAD_NO_TEAM = "a lead without a team imports nobody: ask an admin"
IMPORT_NOT_YOUR_TEAM = "team '{team}' is not yours: you import people of {own}"
IMPORT_NOT_IN_TEAM = "'{person}' is not in {team}: ask their lead or an admin"
IMPORT_LINK_NOT_ALLOWED = (
    "only an admin gives someone already here another e-mail or account: ask an admin"
)
IMPORT_CANNOT_VERIFY_SELF = (
    "nobody verifies their own expertise ({tags}): ask another lead of your team or an admin"
)
IMPORT_CANNOT_VERIFY = "only a lead of their team or an admin verifies expertise ({tags})"
ROLE_NOT_ALLOWED = "only an admin makes someone a lead or an admin, or unmakes one"
TAGGED = "Tagged {name}: {skills}."
SELF_DECLARED = "Added to your expertise (self-declared until a lead verifies it): {skills}."
UNTAGGED = "Removed '{tag}' from {name}'s expertise."
VERIFIED = "Verified {name}'s '{tag}' (level {level})."

# Earned expertise: skills the evidence suggests, for a lead to decide (bot/services/earned.py)
SUGGESTIONS_HEADER = (
    "Suggested from what your team did lately (resolved huddle threads, answers, helpful "
    "votes): accept it, set another level, or dismiss it."
)
SUGGESTIONS_NONE = (
    "No suggestions: nobody's recent huddle threads, answers or helpful votes add up to a "
    "skill they lack."
)
SUGGESTIONS_NOT_LEAD = (
    "Suggestions are for leads and admins, who decide them for their team. Yours go to your lead."
)
SUGGESTION_LINE = "{name} (@{key}): {tag}, level {level} ({held})"
SUGGESTION_NEW = "not tagged"
SUGGESTION_HELD = "holds level {level}, {vouched}"
SUGGESTION_EVIDENCE = "Evidence ({counts}): {proofs}"
SUGGESTIONS_MORE = "…and {count} more (the dashboard lists them all)."
# Singular and plural of each kind of evidence.
EVIDENCE_KINDS = {
    "huddle": ("resolved huddle thread", "resolved huddle threads"),
    "answer": ("answer written", "answers written"),
    "helpful": ("helpful vote", "helpful votes"),
}
EVIDENCE_NONE = "none left"
EVIDENCE_PROOF = {
    "huddle": "helped resolve huddle thread #{id} “{title}” ({day})",
    "answer": "wrote entry #{id} “{title}” ({day})",
    "helpful": "a helpful vote on #{id} ({day})",
}
SUGGESTION_ACCEPT = "Accept (level {level})"
SUGGESTION_LEVEL = "Level {level}"
SUGGESTION_DISMISS = "Dismiss"
SUGGESTION_ACCEPTED = "{name}'s {tag} is now verified at level {level}, earned by {counts}."
SUGGESTION_CHANGED = "{name}'s {tag} is now verified at level {level} (suggested {suggested})."
SUGGESTION_DISMISSED = "Dismissed {name}'s {tag}: it is not suggested again for {days} days."
SUGGESTION_ALREADY = "Already done: {name}'s {tag} was decided that way."
SUGGESTION_GONE = "That suggestion has expired. Type `expertise suggestions` for the current ones."
SUGGESTIONS_HOME = "Suggested expertise for your team"
# Freshness: verified skills with no evidence for a long time, for a lead to re-verify
REVERIFY_HEADER = "Verified a long time ago and no evidence since: still true?"
REVERIFY_DM = (
    "Some verified skills in your team have had no evidence (huddle threads, answers, "
    "helpful votes) for over {days} days. Nothing changes until you decide: confirm each, "
    "or lower it."
)
REVERIFY_LINE = "{name} (@{key}): {tag} level {level}, verified {when}{by}; last evidence: {last}"
REVERIFY_BY = " by {name}"
REVERIFY_NEVER = "none"
REVERIFY_CONFIRM = "Confirm (level {level})"
REVERIFY_LOWER = "Lower to {level}"
REVERIFY_CONFIRMED = "Confirmed {name}'s {tag} at level {level}, verified again by you."
REVERIFY_LOWERED = "Lowered {name}'s {tag} from level {before} to {level}, verified by you."
REVERIFY_ALREADY = "{name}'s {tag} is already verified at level {level}."
REVERIFY_NOT_HIGHER = (
    "That would raise {name}'s {tag}: tag it instead, `expertise tag @{key} {tag}:{level}`."
)

# Accounts: one person on every platform
BAD_EMAIL = "'{email}' is not an e-mail address."
BAD_ACCOUNT_ID = "That is not a {platform} account id."
LINK_NOT_ALLOWED = "Only an admin may link accounts or merge people."
ACCOUNT_LINKED_ELSEWHERE = (
    "The {platform} account {account} is already linked to {other}. If {other} and "
    "{person} are one person, merge them: `whoknows people merge {person} {other}`."
)
EMAIL_TAKEN = "{email} is already the e-mail of {other}: one e-mail, one person."
MERGE_SAME = "{person} is already one person."
LINK_USAGE = (
    "Usage: `expertise link @account handle` (an admin links a chat account to the "
    "person with that handle)."
)
LINKED = "Linked {account} on {platform} to {name} ({handle})."
ALREADY_LINKED = "{account} on {platform} was already {name}'s."
LINKED_MERGED = (
    "Linked {account} on {platform} to {name} ({handle}); {dropped}, the record made for "
    "that account, is merged into them."
)
LINK_IN_CHAT_ONLY = (
    "Link an account from Slack or Teams, where a mention names the account, or on the "
    "dashboard (a person's page)."
)
LINK_NO_ACCOUNT = (
    "{name} has no {platform} account I know of: mention the account itself, or link "
    "it on the dashboard."
)
LINK_WHICH_ACCOUNT = (
    "{name} has {count} {platform} accounts ({accounts}): link the one you mean on the dashboard."
)
LINK_UNKNOWN_KIND = "Choose what to link: a Slack id, a Teams id or an e-mail."
EMAIL_GIVEN = "{name}'s e-mail is now {email}."
EMAIL_ALREADY = "{email} was already {name}'s e-mail."
MERGED = "Merged {dropped} into {name} ({handle}): skills, accounts and history moved."
MERGE_CONFIRM = "Tick the box to confirm that {drop} and {keep} are one person."
MERGE_NOBODY = "Say whose record to merge into {name}: their handle."
# What each kind of refused link says in the admins' list.
CONFLICT_LINES = {
    "linked_elsewhere": "{platform} account {account} is {holder}'s; {claimant} claims it too",
    "has_other_account": (
        "{platform} account {account} has the e-mail {email} of {holder}, who already has a "
        "{platform} account; it was made {claimant} for now"
    ),
    "email_taken": "{claimant} claims the e-mail {email} of {holder}",
}

# Reaching people on another platform
# An invited expert with no account where the huddle thread is, messaged where they have one.
HUDDLE_DM_ELSEWHERE = (
    "{name} asked for your help: “{topic}”. Huddle thread #{id} is on {platform}, where you "
    "have no account yet, so I am asking you here."
)
HUDDLE_DM_ELSEWHERE_HINT = (
    "Press Answer to reply: I post your answer in the thread, under your name. "
    "Or press Decline, so the next expert is asked at once."
)
HUDDLE_ASKED_ELSEWHERE = (
    "{name} has no {platform} account, so I asked them on {other}: their answer will be "
    "posted here."
)
HUDDLE_ANSWER = "Answer"
HUDDLE_ANSWER_FORM = "Answer huddle thread #{id}"
HUDDLE_ANSWER_FIELD = "Your answer to “{topic}”"
HUDDLE_ANSWER_SUBMIT = "Post answer"
HUDDLE_ANSWER_EMPTY = "Write your answer first: it is posted in huddle thread #{id} as yours."
HUDDLE_ANSWERED = "Posted your answer in huddle thread #{id} on {platform}, under your name."
# Why a message could not go to someone, in words an admin can act on (never an internal id).
NO_ACCOUNT_REASON = (
    "{name} has no {platforms} account linked yet; an admin can link one with "
    "`whoknows people link {key} {flag}`"
)
LINK_FLAGS = {"slack": "--slack U…", "teams": "--teams <Microsoft Entra object id>"}
NOBODY_THERE = "the person it was for is no longer here"
NO_LOCAL_ACCOUNT = "{name} has no account in {where}"
DELIVERY_GAVE_UP = "{platform} did not answer after {tries} tries; it may be down"
# Told to the asker, in the thread.
UNDELIVERED_NO_ACCOUNT = (
    " {name} has no {platforms} account linked yet, so I could not ask them in huddle "
    "thread #{id}: an admin can link it with `whoknows people link {key} {flag}`."
)

# Teams roster
# On an expert card in Teams, for someone with no Teams account linked (never a mention).
NOT_ON_TEAMS = "not on Teams yet"
# Slack directory
# On an expert card for someone with no Slack account linked yet (no mention, no DM).
NOT_ON_SLACK = "not on Slack yet"

# Status
STATUS_USAGE = "Usage: `status available|busy|away|oncall|off [30m|2h|1h30m]`, or just `busy 30m`."
STATUS_SET = "You are now {label}{until}."
STATUS_SHOW = "You are {label}{until}. Your working hours: {hours}."
BAD_DURATION = (
    "'{text}' is not a duration I understand: try `30m`, `2h` or `1h30m` (up to 14 days)."
)

# Knowledge base
KB_USAGE = (
    "Usage: `kb <words>` to search, `kb show N` to read an entry, `kb edit N title | answer"
    " [| tags]`, `kb delete N`, `kb helpful N`."
)
KB_NONE = "No knowledge entries match “{query}”."
KB_HEADER = "Knowledge entries for “{query}”"
KB_NOT_FOUND = "There is no knowledge entry #{id}."
KB_AUTHORS = "Written by {names}."

# Help
HELP_HEADER = "whoknows finds the colleague who knows, so you never put a customer on hold to hunt."
HELP_FOOTER = "Mentions like @name pick a person; everything I answer is visible only to you."

# Huddles ("huddle thread" in the UI: Slack's own audio huddles are something else)
HUDDLE_USAGE = (
    "Usage: `huddle <topic> [@person …]` to open a huddle thread, `huddle list [team]`, "
    "`huddle resolve N [title | answer | tags]`, `huddle cancel N`, `huddle reopen N`, "
    "`huddle decline N`, `huddle reply N <text>`."
)
HUDDLE_EMPTY_TOPIC = (
    "Say what the huddle is about, for example `huddle refund for a prepaid top-up`."
)
HUDDLE_NO_EXPERTS = (
    "I could not find experts for “{topic}” to invite. Name them: `huddle {topic} @person`."
)
HUDDLE_NO_CHANNEL = (
    "I don't know where to post the huddle thread: ask a lead to set your team's huddle channel."
)
HUDDLE_ONLY_YOU = "You cannot huddle with yourself: name a colleague, or leave names out."
HUDDLE_NOT_FOUND = "There is no huddle #{id}."
HUDDLE_OPENED = (
    "Opened huddle thread #{id} in {channel} with {names}. I'll escalate if nobody "
    "answers within {minutes}."
)
HUDDLE_ROOT = "Huddle thread #{id}: “{topic}”, asked by "
HUDDLE_ROOT_INVITED = ". Invited: "
HUDDLE_ROOT_OPEN = "Open: reply in this thread to help."
HUDDLE_ROOT_RESOLVED = "Resolved by {name}: saved as knowledge entry #{entry} “{title}”."
HUDDLE_ROOT_CANCELLED = "Cancelled by {name}."
HUDDLE_ROOT_EXPIRED = "Expired after {hours} hours without an answer."
HUDDLE_DM = "{name} asked for your help: “{topic}”. Huddle thread #{id} in {channel}."
HUDDLE_DM_HINT = "Reply in the thread to help, or decline so the next expert is asked at once."
HUDDLE_ESCALATED_EXPERTS = "No answer yet, so I am also inviting "
HUDDLE_ESCALATED_NOBODY = "No answer yet, and no other expert for this is available."
HUDDLE_ESCALATED_CHANNEL = "No answer yet, so I asked in {channel}."
HUDDLE_CHANNEL_CALL = (
    "Can anyone help with “{topic}”? Huddle thread #{id} in {where} has no answer yet."
)
HUDDLE_ESCALATED_LEAD = "No answer yet, so I told the team lead: "
HUDDLE_ESCALATED_NO_LEAD = "No answer yet, and the team has no lead to tell."
HUDDLE_LEAD_DM = "Nobody has answered huddle thread #{id} “{topic}” from {name} in {channel} yet."
HUDDLE_LADDER_DONE = "Nobody has answered yet and I have asked everyone I can. "
HUDDLE_LADDER_DONE_HINT = "Try naming someone: `huddle reply {id} …` keeps the thread going."
HUDDLE_DECLINED = "{name} declined."
HUDDLE_DECLINED_REPLY = "Thanks, you are off huddle thread #{id}."
HUDDLE_NOT_INVITED = "You were not invited to huddle thread #{id}, so there is nothing to decline."
HUDDLE_ALREADY_REPLIED = (
    "You already replied in huddle thread #{id}; resolve it when it is settled."
)
HUDDLE_NOT_OPEN = "Huddle thread #{id} is {state}, not open."
HUDDLE_ALREADY_RESOLVED = "Huddle thread #{id} is already resolved: knowledge entry #{entry}."
HUDDLE_NOT_ALLOWED = (
    "Only the asker, an invited expert or a lead of the team may {action} huddle thread #{id}."
)
HUDDLE_RESOLVE_FORM = "Resolve huddle thread #{id}: what did you conclude?"
HUDDLE_RESOLVE_EMPTY = (
    "A conclusion needs a title and an answer: `huddle resolve {id} title | answer | tags`."
)
HUDDLE_RESOLVED = (
    "Resolved huddle thread #{id}; saved as knowledge entry #{entry}, credited to {names}."
)
HUDDLE_CANCELLED = "Cancelled huddle thread #{id}."
HUDDLE_REOPENED = "Reopened huddle thread #{id}."
HUDDLE_REOPENED_NOTE = "Reopened by {name}."
HUDDLE_REPLY_EMPTY = "Say something: `huddle reply {id} <text>`."
HUDDLE_NOTED = "Posted in huddle thread #{id}."
HUDDLE_LIST_NONE = "No open huddle threads."
HUDDLE_LIST_HEADER = "Open huddle threads{scope}:"
HUDDLE_LIST_LINE = "#{id} “{topic}”, asked by {name} {age} ago, {replies}"
HUDDLE_START = "Start huddle thread"
HUDDLE_PICK_EXPERTS = "Experts to invite"
HUDDLE_DECLINE = "Decline"
HUDDLE_RESOLVE = "Resolve"
HUDDLE_BAD_BUTTON = "That button has expired. Please ask again."
HUDDLE_NOT_SUGGESTED = (
    "I can invite the colleagues suggested for this question. To ask someone else, "
    "name them: `huddle <topic> @name`."
)

# Knowledge base changes
KB_EDIT_USAGE = "Usage: `kb edit N title | answer [| tags]`."
KB_SAME_AS = "Entry #{id} already says exactly that: edit it, or delete this one."
KB_EDITED = "Updated knowledge entry #{id}."
KB_DELETED = "Deleted knowledge entry #{id} “{title}”."
KB_EDIT_NOT_ALLOWED = "Only an author of entry #{id} or a lead may edit it."
KB_DELETE_NOT_ALLOWED = "Only a lead or an admin may delete knowledge entry #{id}."
KB_HELPFUL = "Thanks! {count} found entry #{id} helpful."
KB_HELPFUL_AGAIN = "You already marked entry #{id} helpful ({count} so far)."
KB_HELPFUL_BUTTON = "Helpful"
KB_EDIT_CONFLICT = "Someone changed entry #{id} while you were editing; here it is as it is now."

# Home tab
HOME_SKILLS = "Your expertise"
HOME_SKILL = "{tag}: level {level}, {vouched}"
HOME_NO_SKILLS = "None yet. Add what you know with `/expertise tag refunds:3`; a lead verifies it."
HOME_HUDDLES = "Your open huddle threads"
HOME_HELPED = "Answers credited to you"
HOME_COVERAGE = "{team}: {tags} topics covered"
HOME_SINGLE_EXPERT = "Only one person knows: {tags}."
HOME_GAPS = "Asked in the last {days} days, and nobody clearly knows:"

# Team settings
TEAM_USAGE = (
    "Usage: `team` to see, `team huddles #channel` or `team channel #channel` to set, "
    "`team digest` for the weekly digest."
)
TEAM_NONE = "You are not in a team yet: ask an admin to add you to one."
TEAM_SHOW = "{team}: huddle threads go to {huddles}; escalations call in {channel}."
TEAM_UNSET = "(not set: the channel you ask in)"
TEAM_BAD_CHANNEL = "'{token}' is not a channel: mention one, like #billing-huddles."
TEAM_NOT_ALLOWED = "Only a lead of the team or an admin may change where its huddles go."
TEAM_SET = "{team}: {what} set to {channel}."

# Deliveries that failed for good, told to whoever asked for the huddle
UNDELIVERED_DM = (
    " I could not message {name} ({reason}), so they were not asked in huddle thread #{id}."
)
UNDELIVERED_ROOT = (
    " I could not post huddle thread #{id} in {channel} ({reason}), so nobody was asked."
)
UNDELIVERED_OTHER = " A message for huddle thread #{id} could not be delivered ({reason})."

# Learning goals and shadowing
LEARN_USAGE = (
    "Usage: `expertise learn <topic>` to say what you want to learn, "
    "`expertise unlearn <topic>` to stop."
)
LEARN_SET = (
    "Noted: you are learning “{tag}”. When a huddle thread on it opens in your team and you "
    "are available, I invite you to observe (never to answer)."
)
LEARN_ALREADY = "You are already learning “{tag}” (since {since})."
LEARN_TOO_MANY = (
    "You are learning {count} topics already; stop one first with `expertise unlearn <topic>`."
)
UNLEARNED = "You are no longer learning “{tag}”; what you observed stays in your history."
NOT_LEARNING = "You are not learning “{tag}”."
LEARN_FOR_OTHERS = "Learning goals are your own: set yours with `expertise learn <topic>`."
GOALS_HEADER = "Learning"
GOALS_NONE = "No learning goals yet: `expertise learn <topic>` to set one."
GOAL_LINE = (
    "{tag} (since {since}): {observed} huddle thread{observed_s} observed, "
    "{answers} answer{answers_s} written, {earned}."
)
GOAL_EARNED_NONE = "no skill earned yet"
GOAL_EARNED = "earned {skills}"
GOAL_EARNED_SKILL = "{tag} level {level}{verified}"
GOAL_MENTOR = " Mentor: {name}."
GOAL_FIND_MENTOR = "Find a mentor: {tag}"
GOAL_STOP = "Stop learning {tag}"
# In the huddle thread, once, naming the learners invited to observe.
OBSERVERS_NOTE = (
    " {verb} here to learn about {topic}: observing only, nobody needs to answer them. "
    "Leave whenever you like."
)
OBSERVER_LEAVE = "Leave"
OBSERVER_LEFT = "You stopped observing huddle thread #{id}."
NOT_OBSERVING = "You are not observing huddle thread #{id}."

# Mentors
MENTOR_USAGE = (
    "Usage: `mentor <topic>` for mentors to learn it from, `mentor <topic> @learner` (a lead), "
    "`mentor pair @learner @mentor <topic>`, `mentor unpair @learner <topic>`, `mentor list`."
)
MENTOR_HEADER = "Mentors for {name} to learn “{tag}”"
MENTOR_NONE = "Nobody has a verified “{tag}” skill yet, so I have no mentor to suggest."
MENTOR_REASON = "{tag} level {level}, verified; {team}; {mentees}"
MENTOR_SAME_TEAM = "in your team"
MENTOR_OTHER_TEAM = "in {team}"
MENTOR_MENTEES_NONE = "mentoring nobody now"
MENTOR_MENTEES = "mentoring {count} now"
MENTOR_PAIR = "Pair with {name}"
MENTOR_ASK = "Ask a lead to pair me with {name}"
MENTOR_ASKED = "I asked {names} to pair you with {mentor} for “{tag}”."
MENTOR_NO_LEAD = "Your team has no lead to ask: an admin can pair you."
MENTOR_LEAD_UNREACHABLE = (
    "I cannot message a lead of your team in chat: ask them to pair you on the dashboard."
)
MENTOR_REQUEST_DM = "{learner} would like {mentor} as a mentor to learn “{tag}”."
MENTOR_NOT_ALLOWED = "Only a lead of {name}'s team or an admin may pair them with a mentor."
MENTOR_SELF = "Nobody mentors themselves: choose a colleague."
MENTOR_NO_SKILL = "{name} does not hold “{tag}”, so they cannot mentor it."
MENTOR_PAIRED = "Paired {learner} with {mentor} to learn “{tag}”."
MENTOR_ALREADY = "{mentor} already mentors {learner} in “{tag}”."
MENTOR_PAIRED_DM = "{lead} paired {learner} with {mentor} as a mentor for “{tag}”."
MENTOR_UNPAIRED = "{learner} no longer has a mentor for “{tag}”."
MENTOR_NO_PAIR = "{learner} has no mentor for “{tag}”."
MENTOR_LIST_NONE = "No mentor pairs yet."
MENTOR_LIST_HEADER = "Mentor pairs:"
MENTOR_LIST_LINE = "{learner} learns “{tag}” from {mentor} (paired by {lead}, {since})"

# Team recognition: the weekly digest
DIGEST_USAGE = (
    "Usage: `team digest` to see it now, `team digest on|off`, `team digest day <weekday> "
    "<HH:MM>`, `team digest timezone <Area/City>`, `team digest leaderboard on|off` (a lead)."
)
DIGEST_HEADER = "{team}: your week, {start} to {end} ({zone})"
DIGEST_TEAM = (
    "Together, {team} resolved {resolved} huddle thread{resolved_s} and wrote {answers} "
    "answer{answers_s}."
)
DIGEST_FIRST_EXPERT = "The first expert replied in {median} (median of {count} huddle threads)."
DIGEST_NO_FIRST_EXPERT = "No huddle thread opened this week had an expert reply."
DIGEST_UNANSWERED = (
    "Nobody could answer: {huddles} huddle thread{huddles_s} with no expert reply, and "
    "{questions} question{questions_s} that found nobody{examples}."
)
DIGEST_ALL_ANSWERED = "Every question found someone who knew."
DIGEST_THANKS = "Thanks to everyone who helped, among them {names}."
DIGEST_NOBODY_HELPED = "Nobody replied in a huddle thread or wrote an answer this week."
DIGEST_BOARD = "Who helped most:"
DIGEST_BOARD_LINE = (
    "{rank}. {name}: {huddles} huddle thread{huddles_s} helped, {answers} answer{answers_s}"
)
DIGEST_SETTINGS = "Posted to {channel} every {weekday} at {time} ({zone}){board}."
DIGEST_SETTINGS_OFF = "The weekly digest is off for {team}: `team digest on` turns it on."
DIGEST_SETTINGS_BOARD = ", with the individual leaderboard"
DIGEST_NO_CHANNEL = "(no channel set: `team channel #channel`)"
DIGEST_NOT_ALLOWED = "Only a lead of the team or an admin may change its weekly digest."
DIGEST_BAD_DAY = "'{text}' is not a day and time: try `team digest day monday 09:00`."
DIGEST_BAD_ZONE = "'{text}' is not a time zone: use a name like Europe/London."
DIGEST_CHANGED = "{team}'s weekly digest: {what}. Next: {next}."
DIGEST_TURNED_OFF = "{team}'s weekly digest is off."

# Growth timeline (dashboard and `whoknows report growth`)
GROWTH_EVENTS = {
    "goal_set": "set a learning goal",
    "goal_ended": "ended a learning goal",
    "observed": "observed a huddle thread",
    "answer": "wrote an answer",
    "helped": "helped in a huddle thread",
    "skill": "skill",
    "mentor": "paired with a mentor",
}

# Limits: what one person can make the system do
TOO_MANY_SKILLS = "{name} already holds {limit} skills, the most one person may: untag one first."
TOO_MANY_SPECS = "At most {limit} skills at a time."
KB_TOO_LONG = (
    "An answer is at most {limit:,} characters (this one has {length:,}): shorten it, "
    "or split it into several entries."
)
HUDDLE_TOO_MANY_EXPERTS = (
    "Name at most {limit} colleagues for one huddle thread (you named {count}); "
    "leave names out and I invite the fewest who cover it."
)
HUDDLE_TOO_MANY_OPENED = (
    "You have opened {count} huddle threads in the last {minutes} minutes, the most I open "
    "for one person: wait a few minutes, or add to one you have (`huddle list`)."
)
HUDDLE_TOO_MANY_INVITED = (
    "Your huddle threads have asked {count} colleagues in the last {minutes} minutes, the most "
    "I message for one person: wait a few minutes, or name fewer."
)

# Imports and exports (the command line and the dashboard)
IMPORT_NOTHING = "nothing imported: fix what is below and import the file again"
IMPORT_ENCODING_NOTE = "(read as {encoding}: the file is not UTF-8)"
IMPORT_MIXED_ENCODING = (
    "not UTF-8 (byte 0x{byte:02X}), though other lines are: save the file as UTF-8 "
    "(in Excel: CSV UTF-8) and import it again"
)
IMPORT_BAD_UTF16 = "not UTF-16 text, though the file starts as UTF-16: save it as UTF-8"
IMPORT_OPEN_QUOTE = (
    "a quoted value is not closed before the end of the file (is the file cut short?)"
)
IMPORT_FIELD_TOO_LONG = "a value is longer than {limit:,} characters"
IMPORT_STRAY_QUOTE = (
    'a quote inside a value: quote the whole value and double the quote ("like ""this""")'
)
IMPORT_CSV_ERROR = "the line cannot be read as CSV ({reason})"
IMPORT_CANNOT_READ = "cannot read the file ({reason})"
IMPORT_DATABASE_ERROR = "the database refused the import ({error}): nothing was imported"
IMPORT_DUPLICATE = (
    "the id '{id}' is also on line {line} (ids are matched without case): one row a person"
)
IMPORT_TOO_MANY_SKILLS = "{count:,} skills: at most {limit} a person"
IMPORT_WOULD_HOLD = "'{id}' would hold {count} skills with these, at most {limit}: untag some first"
IMPORT_UPLOAD_TOO_LARGE = (
    "the file is larger than 1 MB: split it, or import it from the command line"
)
EXPORT_EXISTS = "{path} exists: add --force to write over it"
EXPORT_CANNOT_WRITE = "cannot write {path}: {reason}"
FORGOT = (
    "forgot {handle}: profile, e-mail, accounts, skills, presence, questions and messages "
    "about them removed; what they wrote for the team stays, credited to {anonymous}"
)

# Workspaces and tenants whoknows does not serve (bot/services/tenants.py)
SLACK_NOT_SERVED = (
    "Sorry, whoknows works only in the Slack workspaces it was set up for, and this is not "
    "one of them, so it cannot help here. If you think it should, ask the people who run "
    "whoknows in your organisation to add this workspace."
)
TEAMS_NOT_SERVED = (
    "Sorry, whoknows works only for the organisations it was set up for, and yours is not "
    "one of them, so it cannot help here. If you think it should, ask the people who run "
    "whoknows to add your Microsoft 365 organisation."
)
INSTALL_NOT_SERVED = (
    "whoknows serves only the Slack workspaces it was set up for, so it was not installed "
    "in {where}, and Slack was asked to remove it again. If it should work there, ask the "
    "people who run whoknows to add this workspace (its id is {workspace})."
)

# A Slack message with no words of its own (for notifications and screen readers).
SLACK_FALLBACK = "whoknows"
