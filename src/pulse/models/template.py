"""A chat template that renders exactly the text pulse trains on, token for token.

pulse trains and scores one text per example (:class:`pulse.models.chat.ChatCollator`): the
template's user turn with its generation prompt, a space unless that prompt ends in whitespace,
the answer, then the EOS token. A tool that scores or trains through the template (lmms-eval's
log-likelihood, TRL) renders the conversation ``[user, assistant]`` instead; the two must agree,
or the tool sees tokens the model never learned.

- The tiny model's own template (:data:`pulse.models.tiny.CHAT_TEMPLATE`) renders the training
  text. Checkpoints saved by earlier versions carry :data:`LEGACY_TEMPLATES` (an assistant turn
  rendered as ``answer </s>``, one space token too many); :func:`upgrade_legacy` swaps them for
  the current one when a processor is loaded. Their prompts render the same, so a model trained
  under the old template stays valid.
- Any other family keeps its template for prompts; :func:`training_template` wraps it so that
  assistant turns render as pulse trained them (what ``pulse export`` writes).
"""

from __future__ import annotations

import json
from typing import Any

from pulse.errors import ModelError
from pulse.models.chat import ChatCollator, format_prompt
from pulse.models.tiny import CHAT_TEMPLATE

# pulse's template until the assistant turn was fixed: "answer </s>" after "ASSISTANT: ".
LEGACY_TEMPLATES = frozenset(
    {
        "{% for message in messages %}"
        "{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
        "{% if message['content'] is string %}{{ message['content'] + ' ' }}{% else %}"
        "{% for part in message['content'] | selectattr('type', 'equalto', 'image') %}"
        "{{ '<image>\n' }}{% endfor %}"
        "{% for part in message['content'] | selectattr('type', 'equalto', 'text') %}"
        "{{ part['text'] + ' ' }}{% endfor %}{% endif %}"
        "{% if message['role'] == 'assistant' %}{{ '</s>' }}{% endif %}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
    }
)

# The probes a template is checked on: one image turn and one text-only turn.
PROBES = (("Who is this person?", "Alice Moreau", True), ("Where is Basel?", "Switzerland", False))

# The source template, kept for prompts; each assistant turn becomes prompt + sep + answer + EOS.
# Text after an assistant turn is the source's rendering past its own rendering of the earlier
# messages (a template only appends).
_WRAPPER = (
    "{%- macro pulse_source(messages, add_generation_prompt=false) -%}SOURCE{%- endmacro -%}"
    "{%- set ns = namespace(text='', done=0) -%}"
    "{%- for message in messages -%}{%- if message['role'] == 'assistant' -%}"
    "{%- set prompt = pulse_source(messages[:loop.index0], true) -%}"
    "{%- set before = pulse_source(messages[:ns.done], false) if ns.done else '' -%}"
    "{%- if message['content'] is string -%}{%- set answer = message['content'] -%}"
    "{%- else -%}{%- set answer = message['content'] | selectattr('type', 'equalto', 'text')"
    " | map(attribute='text') | join('') -%}{%- endif -%}"
    "{%- set sep = '' if (prompt == '' or prompt[-1:].isspace()) else ' ' -%}"
    "{%- set ns.text = ns.text ~ prompt[before | length:] ~ sep ~ answer ~ EOS -%}"
    "{%- set ns.done = loop.index -%}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if ns.done < messages | length or add_generation_prompt -%}"
    "{%- set before = pulse_source(messages[:ns.done], false) if ns.done else '' -%}"
    "{%- set rest = pulse_source(messages, add_generation_prompt) -%}"
    "{%- set ns.text = ns.text ~ rest[before | length:] -%}"
    "{%- endif -%}{{ ns.text }}"
)


def conversation(question: str, answer: str | None, image: Any = None) -> list[dict[str, Any]]:
    """A user turn (an image part first when ``image`` is not None or False) and, when
    ``answer`` is given, the assistant's reply, in the processors' message format."""
    content: list[dict[str, Any]] = []
    if image is not None and image is not False:
        content.append({"type": "image"} if image is True else {"type": "image", "image": image})
    content.append({"type": "text", "text": question})
    messages = [{"role": "user", "content": content}]
    if answer is not None:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages


def training_text(processor: Any, question: str, answer: str, has_image: bool) -> str:
    """The text pulse trains on for one example (prompt, answer, EOS)."""
    collator = ChatCollator(processor)
    return collator.full_text(format_prompt(processor, question, has_image), answer)


def rendered_text(
    processor: Any, question: str, answer: str, has_image: bool, template: str | None = None
) -> str:
    """What ``template`` (default: the processor's own) renders for the same example."""
    return processor.apply_chat_template(
        conversation(question, answer, has_image), chat_template=template, tokenize=False
    )


def template_problem(processor: Any, template: str | None = None) -> str | None:
    """How ``template`` (default: the processor's) renders an example differently from the
    training text, or None when it renders the training text on every probe."""
    for question, answer, has_image in PROBES:
        want = training_text(processor, question, answer, has_image)
        try:
            got = rendered_text(processor, question, answer, has_image, template)
        except Exception as exc:  # a template error is the template's problem, said in one line
            return f"the template does not render a conversation ({type(exc).__name__}: {exc})"
        if got != want:
            return f"it renders {got!r} where training used {want!r}"
    return None


def wrap_template(source: str, eos: str) -> str:
    """``source`` for prompts; assistant turns rendered as pulse trains them, ending in ``eos``."""
    return _WRAPPER.replace("EOS", json.dumps(eos)).replace("SOURCE", source)


def training_template(processor: Any) -> str:
    """A template that renders the training text exactly: the processor's own when it does (the
    tiny template for a legacy one or none), else the processor's wrapped by
    :func:`wrap_template`; a one-line ModelError when even that does not."""
    source = _template(processor)
    if source is None or source in LEGACY_TEMPLATES:
        # Without a template pulse prompts in LLaVA-1.5's format, which the tiny template renders.
        source = CHAT_TEMPLATE
    if template_problem(processor, source) is None:
        return source
    eos = getattr(getattr(processor, "tokenizer", processor), "eos_token", None) or ""
    wrapped = wrap_template(source, eos)
    problem = template_problem(processor, wrapped)
    if problem is not None:
        raise ModelError(f"cannot make the chat template render the training text: {problem}")
    return wrapped


def _holders(processor: Any) -> list[Any]:
    """The processor and its tokenizer: each carries (and saves) a chat template."""
    return [h for h in (processor, getattr(processor, "tokenizer", None)) if h is not None]


def upgrade_legacy(processor: Any) -> Any:
    """Replace a legacy pulse template (on the processor and its tokenizer) by the current
    one; the prompts render the same. Returns ``processor``."""
    for holder in _holders(processor):
        if getattr(holder, "chat_template", None) in LEGACY_TEMPLATES:
            holder.chat_template = CHAT_TEMPLATE
    return processor


def with_training_template(processor: Any) -> Any:
    """``processor`` with :func:`training_template` on it and its tokenizer, so that whatever
    reads either renders the text the model was trained on. Returns ``processor``."""
    template = training_template(processor)
    for holder in _holders(processor):
        holder.chat_template = template
    return processor


def _template(processor: Any) -> str | None:
    tokenizer = getattr(processor, "tokenizer", processor)
    return getattr(processor, "chat_template", None) or getattr(tokenizer, "chat_template", None)
