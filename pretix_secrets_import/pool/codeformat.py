"""
The code format of an event: which secrets its pool takes beyond the rules every secret follows (``rules.py``). The
organizer chooses a format (``FORMATS``), optionally a length, and the symbology the tickets print (``barcodes.py``),
which brings its own rule: EAN-13 takes 13 digits with their check digit, Code 39 its character set, and so on.
``ImportedSecret.clean_rows`` applies the format to every secret on every way in; changing the format or the
symbology is refused while unused secrets of the pool do not fit the new one (``check_change``).

A regular expression is the organizer's own code. It runs with the ``regex`` module and a time limit per secret, so
that a pattern that backtracks without end fails a secret with a message instead of holding a worker; a pattern that
does so already on simple test strings is refused when it is entered, and so is one whose counted repetitions would
take seconds and gigabytes to compile (``regex`` unrolls ``x{10000000}``). Checking the whole pool has a deadline too.
"""
import dataclasses
import functools
import logging
import re
import subprocess
import sys
from time import monotonic

import regex
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _, ngettext

from pretix_secrets_import.pool.rules import SECRET_MAX_LENGTH
from pretix_secrets_import.tickets import barcodes

FORMAT = "secrets_import_format"
LENGTH_MIN = "secrets_import_length_min"
LENGTH_MAX = "secrets_import_length_max"
REGEX = "secrets_import_regex"
SETTINGS = (FORMAT, LENGTH_MIN, LENGTH_MAX, REGEX, barcodes.SETTING)

FREE, DIGITS, ALPHANUMERIC, EAN13, PATTERN = "free", "digits", "alphanumeric", "ean13", "regex"
FORMATS = {
    FREE: _("Any secret (no format)"),
    DIGITS: _("Digits only"),
    ALPHANUMERIC: _("Letters and digits (A–Z, a–z, 0–9 and + / =, as pretix recommends for secrets)"),
    EAN13: _("EAN-13: 13 digits with a valid check digit"),
    PATTERN: _("A regular expression"),
}
CHARACTERS = {DIGITS: re.compile(r"[0-9]+"), ALPHANUMERIC: re.compile(r"[A-Za-z0-9+/=]+")}
REGEX_MAX_LENGTH = 500
MATCH_TIMEOUT = 0.05  # seconds for one secret; any sensible pattern takes microseconds
MATCH_BUDGET = 0.5  # seconds of matching per check (a request, a chunk of 5,000 lines); a sensible pattern needs ms
# A secret has at most SECRET_MAX_LENGTH characters, so no count needs to be higher; unrolled, nested repetitions
# multiply, and no pattern for secrets needs to grow beyond a few hundred characters.
UNROLLED_MAX = 10000
# A new pattern is compiled on trial in a fresh Python process first, which these limits (or a crash) end, not the
# worker: address space (the interpreter with ``regex`` takes about 40 MB of it), seconds, and the stack of the
# thread that compiles (deep patterns overflow ``regex``'s C stack; a thread of pretix gets at least this much).
TRIAL_MEMORY = 128 * 1024 * 1024
TRIAL_SECONDS = 5
TRIAL_STACK = 128 * 1024
TRIAL = """
import resource, sys, threading
resource.setrlimit(resource.RLIMIT_AS, ({memory}, {memory}))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
import regex
threading.stack_size({stack})
pattern, compiled = sys.stdin.read(), []
def trial():
    try:
        regex.compile(pattern, cache_pattern=False)
    except MemoryError:
        return
    except Exception:  # invalid: the worker compiles it again for the message
        pass
    compiled.append(True)
thread = threading.Thread(target=trial)
thread.start()
thread.join()
print("compiled" if compiled else "refused")
""".format(memory=TRIAL_MEMORY, stack=TRIAL_STACK)
logger = logging.getLogger(__name__)
COUNTED = re.compile(r"\{([0-9]*)(?:,([0-9]*))?\}")
# an inline flag group of ``regex``, scoped (``(?i:``) or not (``(?i)``)
FLAGS = re.compile(r"\(\?((?:[abefiLmprsuwx]|V[01]|-)+)([:)])")
ONLY_FLAGS = re.compile(r"(?:\(\?(?:[abefiLmprsuwx]|V[01]|-)+\))*")  # unscoped flag groups and nothing else
CHECK_SECONDS = 20  # for checking the pool's unused secrets against a new format, within a web request
# A pattern that takes longer than MATCH_TIMEOUT on one of these is refused when it is entered.
PROBES = [c * SECRET_MAX_LENGTH + "!" for c in "a0A-_"] + ["a0" * (SECRET_MAX_LENGTH // 2) + "!"]
MISFITS_SHOWN = 5


@dataclasses.dataclass(frozen=True)
class CodeFormat:
    kind: str = FREE
    length_min: int = 0  # 0: no minimum
    length_max: int = 0  # 0: no maximum
    pattern: str = ""
    symbology: str = barcodes.QR

    @classmethod
    def of(cls, values) -> "CodeFormat":
        """The format stored in ``values``: an event's settings, or a dict of settings as pretix validates them."""
        def get(key, default):
            value = values.get(key, default)
            return default if value is None or value == "" else value

        kind, symbology = get(FORMAT, FREE), get(barcodes.SETTING, barcodes.QR)
        return cls(
            kind=kind if kind in FORMATS else FREE, length_min=int(get(LENGTH_MIN, 0)),
            length_max=int(get(LENGTH_MAX, 0)), pattern=get(REGEX, "") if kind == PATTERN else "",
            symbology=symbology if symbology in barcodes.SYMBOLOGIES else barcodes.QR,
        )

    @classmethod
    def of_event(cls, event) -> "CodeFormat":
        return cls.of(event.settings)

    @property
    def is_free(self) -> bool:
        """Whether every secret that follows the general rules fits."""
        return (self.kind == FREE and not self.length_min and not self.length_max
                and not barcodes.SYMBOLOGIES[self.symbology].linear)

    def problems(self) -> dict:
        """What is wrong with the format itself, as ``{setting: message}``."""
        errors = {}
        if self.length_max and self.length_min > self.length_max:
            errors[LENGTH_MAX] = _("The longest length must not be shorter than the shortest.")
        if self.kind == EAN13 and not self.length_min <= 13 <= (self.length_max or 13):
            errors[LENGTH_MIN] = _("EAN-13 codes have 13 digits: leave the length empty or include 13.")
        spec = barcodes.SYMBOLOGIES[self.symbology]
        if self.length_min > spec.max_length:
            errors[barcodes.SETTING] = _("{symbology} prints at most {max} characters on a ticket, shorter than "
                                         "the shortest length of this format.").format(
                symbology=spec.label, max=spec.max_length)
        elif self.symbology == "ean13" and not self.length_min <= 13 <= (self.length_max or 13):
            errors[barcodes.SETTING] = _("EAN-13 prints codes of 13 digits, which the length of this format "
                                         "excludes.")
        elif self.symbology == "itf" and (self.kind == EAN13 or self.length_max == 1 or (
                self.length_min and self.length_min == self.length_max and self.length_min % 2)):
            errors[barcodes.SETTING] = _("Interleaved 2 of 5 prints an even number of digits, which the codes of "
                                         "this format never have.")
        if self.kind == PATTERN:
            error = pattern_problem(self.pattern)
            if error:
                errors[REGEX] = error
        return errors

    def checker(self, budget=MATCH_BUDGET):
        """
        A function of one secret that says why it does not fit this format (a message naming it), or ``None``. Once
        it has spent ``budget`` seconds matching the regular expression (``None``: no limit), it refuses the other
        secrets as not checked in time without trying them.
        """
        kind, length_min, length_max, symbology = self.kind, self.length_min, self.length_max, self.symbology
        characters = CHARACTERS.get(kind)
        # a file import checks millions of secrets: bound methods, and the messages only for secrets that fail
        match, broken = None, None
        if kind == PATTERN:
            try:
                match = compile_pattern(self.pattern).fullmatch
            except ValueError as e:  # stored before a rule for expressions was added: no secret can be checked
                broken = e
        spent = [0.0]  # seconds of matching so far
        spec = barcodes.SYMBOLOGIES[symbology]
        printable = spec.pattern.fullmatch if spec.linear else None
        longest = spec.max_length

        def check(secret):
            if characters is not None and not characters.fullmatch(secret):
                message = (
                    _("{secret} contains characters other than digits, the only ones this event's codes have.")
                    if kind == DIGITS else
                    _("{secret} contains characters other than letters, digits and + / =, the only ones this event's "
                      "codes have.")
                )
                return message.format(secret=secret)
            if kind == EAN13:
                if not barcodes.SYMBOLOGIES["ean13"].pattern.fullmatch(secret):
                    return _("{secret} is not an EAN-13 code, which this event's codes are: 13 digits, the last of "
                             "them the check digit.").format(secret=secret)
                problem = barcodes.refusal("ean13", secret)
                if problem:
                    return str(problem)
            if (length_min and len(secret) < length_min) or (length_max and len(secret) > length_max):
                return _("{secret} has {length} characters, but this event's codes have {lengths}.").format(
                    secret=secret, length=len(secret), lengths=self.lengths())
            if broken is not None:
                return _("{secret} cannot be checked: this event's regular expression is not valid ({error}). "
                         "Please correct it in the settings.").format(secret=secret, error=broken)
            if match is not None:
                started = monotonic()
                try:
                    if budget is not None and spent[0] > budget:
                        raise TimeoutError
                    fits = match(secret, timeout=MATCH_TIMEOUT)
                except TimeoutError:
                    return _("{secret} could not be checked against this event's regular expression in time: "
                             "please simplify the expression in the settings.").format(secret=secret)
                finally:
                    spent[0] += monotonic() - started
                if not fits:
                    return _("{secret} does not match this event's regular expression {pattern}.").format(
                        secret=secret, pattern=self.pattern)
            if printable is not None and (symbology == "ean13" or not printable(secret) or len(secret) > longest):
                problem = barcodes.refusal(symbology, secret)
                return None if problem is None else str(problem)
            return None

        return check

    def lengths(self) -> str:
        if self.length_min and self.length_min == self.length_max:
            return _("exactly {count} characters").format(count=self.length_min)
        if self.length_min and self.length_max:
            return _("{min} to {max} characters").format(min=self.length_min, max=self.length_max)
        if self.length_min:
            return _("at least {count} characters").format(count=self.length_min)
        return _("at most {count} characters").format(count=self.length_max)

    def describe(self) -> str:
        """The format in a few words, for messages."""
        parts = [] if self.kind == FREE else [str(FORMATS[self.kind])]
        if self.kind == PATTERN:
            parts[0] = _("the regular expression {pattern}").format(pattern=self.pattern)
        if self.length_min or self.length_max:
            parts.append(str(self.lengths()))
        if barcodes.SYMBOLOGIES[self.symbology].linear:
            parts.append(str(_("printable as {symbology}").format(
                symbology=barcodes.SYMBOLOGIES[self.symbology].label)))
        return ", ".join(map(str, parts))

    def sign(self, event) -> str:
        """
        The format as the signed ``format`` parameter of the page of misfits (``views.MisfitsView``): the page checks
        the whole pool against it, so it takes only formats that ``check_change`` checked, not any a reader types.
        """
        return signing.dumps([self.kind, self.length_min, self.length_max, self.pattern, self.symbology],
                             salt=_signing_salt(event), compress=True)

    @classmethod
    def unsign(cls, event, value: str) -> "CodeFormat":
        """The format of a ``sign``-ed parameter; ``signing.BadSignature`` if it is not one."""
        try:
            kind, length_min, length_max, pattern, symbology = signing.loads(value, salt=_signing_salt(event))
        except (TypeError, ValueError) as e:  # signed, but not by ``sign``
            raise signing.BadSignature(str(e)) from e
        return cls.of({FORMAT: kind, LENGTH_MIN: length_min, LENGTH_MAX: length_max, REGEX: pattern,
                       barcodes.SETTING: symbology})


def _signing_salt(event) -> str:
    return f"pretix_secrets_import.misfits:{event.pk}"


def unrolled(pattern: str):
    """
    The highest count of the counted repetitions (``{m}``, ``{m,n}``) in a regular expression and the length it
    grows to when ``regex`` unrolls them, both estimated from above, as ``(count, length)``. It reads the pattern
    only as far as that needs: escapes, character sets, groups, flags and comments; ``ValueError`` with a message
    for the two kinds of flags that would hide counts from it.
    """
    sizes = [0]  # per open group, the unrolled length of its content so far
    last = 0  # the unrolled length of the item that a quantifier after it repeats
    highest, i, end = 0, 0, len(pattern)
    while i < end:
        c = pattern[i]
        flags = FLAGS.match(pattern, i) if c == "(" else None
        if flags:
            # Verbose mode hides counts in whitespace and comments, and regex lets a count after a flag group
            # repeat the item before it: neither is needed for secrets, so both are refused.
            if "x" in flags[1]:
                raise ValueError(_("Verbose mode (the flag x) is not available for secrets' expressions."))
            if flags[2] == ")" and not ONLY_FLAGS.fullmatch(pattern, 0, i):
                raise ValueError(_("Put flags such as (?i) at the start of the expression, or use a scoped "
                                   "group such as (?i:…)."))
            if flags[2] == ":":
                sizes.append(0)
            i = flags.end()
            continue
        if c == "\\":
            i += 2
            if pattern[i - 1:i] in ("p", "P", "N") and pattern[i:i + 1] == "{":  # \p{Letter} and the like
                i = pattern.find("}", i) + 1 or end
            sizes[-1] += 1
            last = 1
            continue
        if c == "[":
            i += 1
            i += pattern[i:i + 1] == "^"
            i += pattern[i:i + 1] == "]"
            while i < end and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
            sizes[-1] += 1
            last = 1
        elif pattern.startswith("(?#", i):
            i = pattern.find(")", i) + 1 or end
            continue
        elif c == "(":
            sizes.append(0)
        elif c == ")" and len(sizes) > 1:
            last = max(sizes.pop(), 1)
            sizes[-1] += last
        elif c == "{" and (counted := COUNTED.match(pattern, i)):
            least, most = int(counted[1] or 0), counted[2]  # most: None for {m}, "" for {m,}
            count = max(least, int(most or 0))
            highest = max(highest, count)
            # regex writes the item out for the least count, and once more for any further repetitions
            copies = count if most is None or (most and int(most) == least) else max(count, least + 1)
            if counted[1] or most:
                sizes[-1] += last * (copies - 1)
                last *= copies
            i = counted.end()
            continue
        elif c == "+":  # x+ is written out as x, then x again for the further repetitions
            sizes[-1] += last
            last *= 2
        elif c not in "*?| \t\n\r\f\v":
            sizes[-1] += 1
            last = 1
        i += 1
    return highest, sum(sizes)


@functools.lru_cache(maxsize=8)
def compile_pattern(pattern: str):
    """
    A regular expression for secrets, compiled; ``ValueError`` with a message if it is not one or is too costly.
    Cached here (the formats of the events in use), not in ``regex``'s own cache of hundreds of patterns.
    """
    _check_bounds(pattern)
    return _compile(pattern)


def _compile(pattern: str):
    """``pattern`` compiled, or ``ValueError`` with a message that says why ``regex`` refused it."""
    try:
        return regex.compile(pattern, cache_pattern=False)
    except (regex.error, ValueError, OverflowError, RecursionError, MemoryError) as e:
        raise ValueError(_("This is not a valid regular expression: {error}").format(
            error=str(e) or type(e).__name__)) from e


def _check_bounds(pattern: str):
    """``ValueError`` with a message if ``pattern`` is empty, too long, or repeats too much."""
    if not pattern:
        raise ValueError(_("Enter the regular expression that the secrets must match."))
    if len(pattern) > REGEX_MAX_LENGTH:
        raise ValueError(_("The regular expression must not be longer than {max} characters.").format(
            max=REGEX_MAX_LENGTH))
    count, length = unrolled(pattern)  # ValueError for what it does not read
    if count > SECRET_MAX_LENGTH or length > UNROLLED_MAX:
        raise ValueError(_("This regular expression repeats too much for secrets of at most {max} characters: use "
                           "repeat counts up to {max}, and counted repetitions inside each other only as far as the "
                           "expression, written out, stays within {unrolled} characters.").format(
            max=SECRET_MAX_LENGTH, unrolled=UNROLLED_MAX))


def compiles_on_trial(pattern: str) -> bool:
    """
    Whether ``regex`` compiles ``pattern`` within the TRIAL_ limits, or refuses it as invalid within them (the caller
    then compiles it for the message): tried in a fresh Python process, because the estimate of ``unrolled`` cannot
    know every construct of ``regex`` and what it costs. ``False`` also if the trial cannot run (logged).
    """
    try:
        trial = subprocess.run([sys.executable, "-I", "-c", TRIAL], input=pattern, capture_output=True, text=True,
                               timeout=TRIAL_SECONDS, env={"MALLOC_ARENA_MAX": "1"})
    except subprocess.TimeoutExpired:
        return False
    except OSError:
        logger.exception("A regular expression for secrets could not be compiled on trial with %s", sys.executable)
        return False
    return trial.stdout.strip() == "compiled"


def pattern_problem(pattern: str):
    """What is wrong with a regular expression for secrets (a message), or ``None``."""
    try:
        _check_bounds(pattern)
    except ValueError as e:
        return str(e)
    if not compiles_on_trial(pattern):
        return _("This regular expression takes too much memory or time to prepare. Please simplify it.")
    try:
        compiled = _compile(pattern)  # not cached: it may be refused
    except ValueError as e:
        return str(e)
    try:
        for probe in PROBES:
            compiled.fullmatch(probe, timeout=MATCH_TIMEOUT)
    except TimeoutError:
        return _("This regular expression takes too long to check a secret (it backtracks too much). Please "
                 "simplify it.")
    return None


class TooSlow(Exception):
    """Checking the pool against a format passed its deadline; ``after``: the ID of the last secret checked."""

    def __init__(self, after: int):
        super().__init__(after)
        self.after = after


def misfits(event, code_format: CodeFormat, after: int = 0, deadline: float = None):
    """
    Yield ``(id, secret, message)`` of the event's unused secrets with IDs above ``after`` that do not fit
    ``code_format``, by ID. Raises ``TooSlow`` once ``monotonic()`` passes ``deadline``.
    """
    from pretix_secrets_import.models import ImportedSecret

    if code_format.is_free:
        return
    check = code_format.checker(budget=None)  # the deadline bounds it; a secret is listed only if it was checked
    rows = (ImportedSecret.of_event(event).filter(used=False, pk__gt=after).order_by("pk")
            .values_list("pk", "secret").iterator(chunk_size=5000))
    for pk, secret in rows:
        message = check(secret)
        if message is not None:
            yield pk, secret, message
        if deadline is not None and monotonic() > deadline:  # after a secret, so that each call gets on
            raise TooSlow(pk)


def _pool_version(event):
    """
    What changes when secrets are added to the pool, removed or changed, but not when sales use them: the count, the
    newest ID, and the newest log entry of such a change (every way to change a secret logs it).
    """
    from pretix.base.models import LogEntry

    from pretix_secrets_import.models import ImportedSecret
    from pretix_secrets_import.pool import store as pool

    last = ImportedSecret.of_event(event).order_by("-pk").values_list("pk", flat=True).first()
    logged = (LogEntry.objects.filter(event_id=event.pk, action_type__startswith="pretix_secrets_import.secret")
              .order_by("-pk").values_list("pk", flat=True).first())
    return pool.count(event), last, logged


def misfits_url(event, code_format: CodeFormat, after: int = 0) -> str:
    query = {"format": code_format.sign(event), **({"after": after} if after else {})}
    return settings.SITE_URL + reverse("plugins:pretix_secrets_import:misfits", kwargs={
        "organizer": event.organizer.slug, "event": event.slug,
    }) + "?" + urlencode(query)


def check_change(event, values, html=False):
    """
    Raise a ValidationError if the code format in the settings ``values`` (all of the event's settings, the changed
    ones merged in) differs from the event's current one and is wrong in itself, or unused secrets of the pool do
    not fit it: the message counts them and links to them (``html``: as a link, else as the address). Also if
    checking takes longer than ``CHECK_SECONDS``, or the pool changed meanwhile: then the format stays as it is too.
    """
    new, old = CodeFormat.of(values), CodeFormat.of_event(event)
    if new == old:  # saving other settings neither checks the format again nor the pool
        return
    errors = new.problems()
    if errors:
        raise ValidationError({key: [message] for key, message in errors.items()})
    if new.is_free:
        return
    field = barcodes.SETTING if new.symbology != old.symbology else FORMAT
    count, examples = 0, []
    before = _pool_version(event)
    try:
        for _pk, secret, _message in misfits(event, new, deadline=monotonic() + CHECK_SECONDS):
            count += 1
            if len(examples) < MISFITS_SHOWN:
                examples.append(secret)
    except TooSlow:
        message = _("Checking the unused secrets of the pool against {format} took longer than {seconds} seconds, "
                    "so the settings were not changed.").format(format=new.describe(), seconds=CHECK_SECONDS)
        if new.kind == PATTERN:
            message = "{} {}".format(message, _("A simpler regular expression checks faster."))
        raise ValidationError({field: [message]})
    if not count and _pool_version(event) != before:
        # secrets that a file import or an API client committed while the pool was read may not have been seen
        raise ValidationError({field: [_("Secrets were added to the pool or removed while it was checked against "
                                         "the new format. Please save again.")]})
    if not count:
        return
    message = ngettext(
        "{count} unused secret in the pool does not fit {format} ({examples}). Delete it or change it first.",
        "{count} unused secrets in the pool do not fit {format} ({examples}). Delete them or change them first.",
        count,
    ).format(count=count, format=new.describe(),
             examples=", ".join(examples) + (", …" if count > len(examples) else ""))
    url = misfits_url(event, new)
    if html:
        message = format_html('{} <a href="{}">{}</a>', message, url, _("Show them"))
    else:
        message = "{} {}".format(message, _("They are listed at {url}").format(url=url))
    raise ValidationError({field: [message]})
