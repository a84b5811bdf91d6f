"""A tiny YAML writer for test configurations (block style; strings double-quoted unless plainly
safe), so the files Portico reads look like the ones users write."""

import json
import re

_PLAIN = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.\-/]*\Z")  # \Z: "$" would accept a final newline
_RESERVED = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"}


def scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return str(v)
    s = str(v)
    if _PLAIN.match(s) and s.lower() not in _RESERVED:
        return s
    return json.dumps(s, ensure_ascii=True)  # a JSON string is a valid YAML double-quoted one


def _key(k):
    return scalar(str(k))


def dump(obj, indent=0):
    """YAML text for obj (dicts, lists, scalars)."""
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        if not obj:
            return pad + "{}\n"
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append("%s%s:\n%s" % (pad, _key(k), dump(v, indent + 2)))
            elif isinstance(v, dict):
                out.append("%s%s: {}\n" % (pad, _key(k)))
            elif isinstance(v, list):
                out.append("%s%s: []\n" % (pad, _key(k)))
            else:
                out.append("%s%s: %s\n" % (pad, _key(k), scalar(v)))
        return "".join(out)
    if isinstance(obj, list):
        if not obj:
            return pad + "[]\n"
        for v in obj:
            if isinstance(v, (dict, list)) and v:
                inner = dump(v, indent + 2)
                # put the first line after "- "
                out.append("%s- %s" % (pad, inner[indent + 2:]))
            else:
                out.append("%s- %s\n" % (pad, scalar(v) if not isinstance(v, (dict, list))
                                          else ("{}" if isinstance(v, dict) else "[]")))
        return "".join(out)
    return pad + scalar(obj) + "\n"
