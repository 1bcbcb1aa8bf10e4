"""Block Kit checked by Slack's own Python models, and the rules they leave to the caller.

slack_sdk's models (`Block.parse`, `View`) know every block, element and composition
object Slack documents, with their length and count limits; `validate_json` raises on
any limit broken. They do not know a message's block count, nor that action and block
ids must be unique, nor that a message needs a fallback `text`: those rules, from Block
Kit's reference, are checked here. Each function returns the problems found, none
when the payload is one Slack accepts.

Besides, each block must come back from the model as it went in (`to_dict()`), so a
field slack_sdk does not know (a misspelt key, a property of another block type) is
a problem too, not silently dropped.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

MESSAGE_BLOCKS = 50  # chat.postMessage, chat.update, response_url
VIEW_BLOCKS = 100  # modals and the App Home
SECTION_TEXT = 3_000
TEXT_INPUT = 3_000  # a plain-text input's max_length and min_length


def _block_problems(index: int, block: dict[str, Any]) -> list[str]:
    where = f"block {index} ({block.get('type')})"
    try:
        model = Block.parse(block)
        if model is None:
            return [f"{where}: not a block type slack_sdk knows"]
        model.validate_json()
        back = model.to_dict()
    except (SlackObjectFormationError, TypeError, ValueError, KeyError) as error:
        return [f"{where}: {type(error).__name__}: {error}"]
    problems = []
    if back != block:
        problems.append(f"{where}: slack_sdk's model does not keep it as sent: {back} != {block}")
    text = block.get("text")
    section = block.get("type") == "section" and isinstance(text, dict)
    if section and len(text.get("text", "")) > SECTION_TEXT:  # type: ignore[union-attr]
        problems.append(f"{where}: section text over {SECTION_TEXT} characters")
    for element in _elements(block):
        if element.get("type") == "plain_text_input":
            problems.extend(f"{where}: {p}" for p in _text_input_problems(element))
    action_ids = [e.get("action_id") for e in _elements(block) if e.get("action_id")]
    repeated = [a for a, n in Counter(action_ids).items() if n > 1]
    if repeated:
        problems.append(f"{where}: action_id repeated within the block: {repeated}")
    return problems


def _text_input_problems(element: dict[str, Any]) -> list[str]:
    """The plain-text input's bounds, which slack_sdk's model does not check."""
    longest = element.get("max_length", TEXT_INPUT)
    problems = []
    if not 0 < longest <= TEXT_INPUT:
        problems.append(f"max_length {longest} outside 1–{TEXT_INPUT}")
    if not 0 <= element.get("min_length", 0) <= min(longest, TEXT_INPUT):
        problems.append(f"min_length {element['min_length']} outside 0–{longest}")
    if len(element.get("initial_value", "")) > longest:
        problems.append(f"initial_value longer than max_length {longest}")
    return problems


def _elements(block: dict[str, Any]) -> list[dict[str, Any]]:
    """The interactive elements of a block: an actions block's, an accessory, an input's."""
    found = list(block.get("elements", [])) if block.get("type") == "actions" else []
    for key in ("accessory", "element"):
        if isinstance(block.get(key), dict):
            found.append(block[key])
    return found


def blocks_problems(blocks: list[dict[str, Any]], max_blocks: int) -> list[str]:
    problems = []
    if len(blocks) > max_blocks:
        problems.append(f"{len(blocks)} blocks, more than {max_blocks}")
    for index, block in enumerate(blocks):
        problems.extend(_block_problems(index, block))
    block_ids = [b["block_id"] for b in blocks if b.get("block_id")]
    repeated = [b for b, n in Counter(block_ids).items() if n > 1]
    if repeated:
        problems.append(f"block_id repeated: {repeated}")
    return problems


def message_problems(message: dict[str, Any]) -> list[str]:
    """A chat.postMessage / chat.update / response_url body: blocks and fallback text."""
    problems = blocks_problems(message.get("blocks", []), MESSAGE_BLOCKS)
    text = message.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append("no fallback text: notifications and screen readers show nothing")
    return problems


def view_problems(view: dict[str, Any]) -> list[str]:
    """A modal (views.open) or the App Home (views.publish)."""
    try:
        View(**view).validate_json()
    except (SlackObjectFormationError, TypeError, ValueError, KeyError) as error:
        return [f"view: {type(error).__name__}: {error}"]
    return blocks_problems(view.get("blocks", []), VIEW_BLOCKS)
