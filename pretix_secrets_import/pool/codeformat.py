"""
The code format of an event: which secrets its pool takes beyond the rules every secret follows (``rules.py``). The
organizer chooses a format (``FORMATS``), optionally a length, and the symbology the tickets print (``barcodes.py``),
which brings its own rule: EAN-13 takes 13 digits with their check digit, Code 39 its character set, and so on.
``ImportedSecret.clean_rows`` applies the format to every secret on every way in; changing the format or the
symbology is refused while unused secrets of the pool do not fit the new one (``check_change``).

A regular expression is the organizer's own code, so it runs on RE2: matching takes time linear in the secret and
compiling stays within ``RE2_MAX_MEM``, whatever the expression, so none can hold a worker. What RE2 does not take
(backreferences and lookaround need backtracking) is refused with a message that names it, and so is a count that
RE2 would read as text where Python reads a repetition. Checking the whole pool has a deadline, for large pools.
"""
import dataclasses
import functools
import re

import re2
from django.core import signing
from django.utils.translation import gettext_lazy as _

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
# RE2's default is 8 MiB, and its module caches 128 expressions; 2 MiB take \pL{60} or [A-Z]{1000} and compile in
# at most about 0.1 s. Beyond it, RE2 refuses the expression as too large.
RE2_MAX_MEM = 2 * 1024 * 1024
RE2_MAX_REPEAT = 1000  # RE2's highest count, also for counts inside each other multiplied
OPTIONS = re2.Options()
OPTIONS.max_mem = RE2_MAX_MEM
OPTIONS.log_errors = False  # RE2 would write each refusal to stderr; the organizer gets it as a message
# RE2 reads {,5}, {05} and {4294967296} as the characters themselves, Python's engines as counts (or refuse them):
# such a count is refused, so that no expression means something else than before. Braces in escapes, \Q…\E and
# character classes are characters in both and skipped (group 1 is a count outside them).
COUNTED = re2.compile(r"(?s)\\Q.*?(?:\\E|$)|\\[pPx]\{[^}]*\}|\\.|\[\^?\]?(?:\[:[^\]]*:\]|\\.|[^\]\\])*\]"
                      r"|(\{(?:[0-9]+,?[0-9]*|,[0-9]*)\})", OPTIONS)
RE2_COUNTED = re.compile(r"\{(?:0|[1-9][0-9]{0,8})(?:,(?:0|[1-9][0-9]{0,8})?)?\}")  # RE2's ParseInteger
INVALID = _("This is not a valid regular expression: {error}")
BACKREFERENCE = _("Backreferences such as {construct} are not supported: an expression for secrets cannot refer to "
                  "what a group matched.")
ATOMIC = _("Atomic groups and possessive repetitions ({construct}) are not supported: RE2 never backtracks, so "
           "write a plain group or repetition instead.")
# RE2's refusals, "<what>: <construct>" (re2/regexp.cc), of what backtracking engines such as Python's take
REFUSALS = [
    ("invalid escape sequence", re.compile(r"\\[1-9k]"), BACKREFERENCE),
    ("invalid perl operator", re.compile(r"\(\?P="), BACKREFERENCE),
    ("invalid escape sequence", re.compile(r"\\Z"),
     _("{construct} is not supported: write \\z for the end of the secret, or nothing, as the expression matches the "
       "whole secret anyway.")),
    ("invalid perl operator", re.compile(r"\(\?<?[=!]"),
     _("Lookahead and lookbehind ({construct}) are not supported: describe the characters at that place instead, "
       "for example with a character class.")),
    ("invalid perl operator", re.compile(r"\(\?>"), ATOMIC),
    ("bad repetition operator", re.compile(r".+\+"), ATOMIC),  # *+, {2}+; a** and x{2}{3} are invalid as ever
    ("invalid perl operator", re.compile(r"\(\?[imsU-]*x"),
     _("Verbose mode (the flag x) is not available for secrets' expressions.")),
    ("invalid perl operator", re.compile(r"\(\?"),
     _("{construct} is not supported: of the groups that start with (?, RE2 takes (?:…), named groups such as "
       "(?P<name>…) and the flags i, m, s and U, as in (?i) or (?i:…).")),
]
COUNT_RANGE = re.compile(r"\{([0-9]+)(?:,([0-9]*))?\}")


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
            try:
                compile_pattern(self.pattern)
            except ValueError as e:
                errors[REGEX] = str(e)
        return errors

    def checker(self):
        """A function of one secret that says why it does not fit this format (a message naming it), or ``None``."""
        kind, length_min, length_max, symbology = self.kind, self.length_min, self.length_max, self.symbology
        characters = CHARACTERS.get(kind)
        # a file import checks millions of secrets: bound methods, and the messages only for secrets that fail
        match, broken = None, None
        if kind == PATTERN:
            try:
                match = compile_pattern(self.pattern)
            except ValueError as e:  # stored before a rule for expressions was added: no secret can be checked
                broken = e
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
            if match is not None and not match(secret):
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


@functools.lru_cache(maxsize=8)
def compile_pattern(pattern: str):
    """
    A function of a secret that tells whether a regular expression matches it as a whole; ``ValueError`` with a
    message if the expression is not one that RE2 takes. Cached here: the formats of the events in use.
    """
    if not pattern:
        raise ValueError(_("Enter the regular expression that the secrets must match."))
    if len(pattern) > REGEX_MAX_LENGTH:
        raise ValueError(_("The regular expression must not be longer than {max} characters.").format(
            max=REGEX_MAX_LENGTH))
    try:
        compiled = re2.compile(pattern, OPTIONS)
    except re2.error as e:
        raise ValueError(_refusal(e.args[0].decode(errors="replace"))) from e  # cut UTF-8 in the construct
    except UnicodeEncodeError as e:  # a lone surrogate, which no secret has either
        raise ValueError(INVALID.format(error=e)) from e
    for count in COUNTED.finditer(pattern):
        if count[1] is not None and not RE2_COUNTED.fullmatch(count[1]):
            raise ValueError(_("RE2 reads {construct} as these characters, not as a repetition: write counts from 0 "
                               "to {max} without leading zeros, and the smallest count too, as in {{0,5}}.").format(
                construct=count[1], max=RE2_MAX_REPEAT))
    return _matcher(pattern, compiled.fullmatch)


def _matcher(pattern: str, fullmatch):
    """
    ``fullmatch`` made faster: it also works out the offsets of every group, a set of the one expression only whether
    it matches, in a fifth of the time (a file import checks millions of secrets). A set matches with RE2's DFA
    alone, which says no if it runs out of memory: ``fullmatch`` decides those secrets.
    """
    whole = re2.Set.FullMatchSet(OPTIONS)
    whole.Add(pattern)
    try:
        whole.Compile()
    except re2.error:  # too little memory left for the DFA of this expression
        return fullmatch
    quick = whole.Match
    return lambda secret: quick(secret) is not None or fullmatch(secret) is not None


def _refusal(error: str) -> str:
    """The message for an expression that RE2 refused with ``error``."""
    if error == "pattern too large - compile failed":  # more than RE2_MAX_MEM
        return _("This regular expression takes too much memory or time to prepare. Please simplify it.")
    what, _colon, construct = error.partition(": ")
    if construct == "(?P":  # RE2 stops at the P of Python's (?P=name); it takes (?P<name>…)
        construct = "(?P=name)"
    counts = COUNT_RANGE.match(construct)
    if what == "invalid repetition size" and counts and not (counts[2] and int(counts[2]) < int(counts[1])):
        return _("This regular expression repeats too much ({construct}): RE2 takes counts up to {max}, also "
                 "multiplied where counted repetitions are inside each other. Use + or * with the format's lengths "
                 "instead.").format(construct=construct, max=RE2_MAX_REPEAT)
    for kind, constructs, message in REFUSALS:
        if what == kind and constructs.match(construct):
            return message.format(construct=construct)
    return INVALID.format(error=error)
