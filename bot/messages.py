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
}
REASON_WROTE = "wrote answers to similar questions"

# Expertise
EXPERTISE_USAGE = (
    "Usage: `expertise [show] [@person]`, `expertise tag [@person] tag[:level] …`, "
    "`expertise untag [@person] tag`, `expertise verify @person tag`."
)
EXPERTISE_NONE = "{name} has no tagged expertise yet."
EXPERTISE_HEADER = "Expertise of {name}"
UNKNOWN_PERSON = "I don't know anyone called '{token}'."
UNKNOWN_TAG = "There is no tag '{name}'."
UNKNOWN_TAG_SUGGEST = "There is no tag '{name}'. Did you mean {suggestions}?"
EMPTY_TAG = "the tag name is empty"
TAG_TOO_LONG = "a tag name is at most {limit} characters"
BAD_LEVEL = "'{level}' is not a level (use 1 to 5)"
NO_SUCH_SKILL = "{name} is not tagged with '{tag}'."
NOT_ALLOWED = "Only a lead of their team or an admin may {action} {name}'s expertise."
CANNOT_VERIFY_SELF = "Nobody verifies their own expertise: ask a lead of your team."
TAGGED = "Tagged {name}: {skills}."
SELF_DECLARED = "Added to your expertise (self-declared until a lead verifies it): {skills}."
UNTAGGED = "Removed '{tag}' from {name}'s expertise."
VERIFIED = "Verified {name}'s '{tag}' (level {level})."

# Status
STATUS_USAGE = "Usage: `status available|busy|away|oncall|off [30m|2h|1h30m]`, or just `busy 30m`."
STATUS_SET = "You are now {label}{until}."
STATUS_SHOW = "You are {label}{until}. Your working hours: {hours}."
BAD_DURATION = (
    "'{text}' is not a duration I understand: try `30m`, `2h` or `1h30m` (up to 14 days)."
)

# Knowledge base
KB_USAGE = "Usage: `kb <words>` to search, `kb show <number>` to read an entry."
KB_NONE = "No knowledge entries match “{query}”."
KB_HEADER = "Knowledge entries for “{query}”"
KB_NOT_FOUND = "There is no knowledge entry #{id}."
KB_AUTHORS = "Written by {names}."

# Help
HELP_HEADER = "whoknows finds the colleague who knows, so you never put a customer on hold to hunt."
HELP_FOOTER = "Mentions like @name pick a person; everything I answer is visible only to you."
