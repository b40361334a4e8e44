"""Cross-checks testdata/chat/cases.json with Python's Jinja2, set up the way
transformers' apply_chat_template sets it up (ImmutableSandboxedEnvironment,
trim_blocks and lstrip_blocks, the loopcontrols extension, raise_exception,
strftime_now and a tojson filter that keeps non-ASCII characters).

    python3 testdata/chat/reference.py   # needs jinja2; prints one line per case

The expected strings in cases.json were written by hand from the templates;
this script only confirms that Jinja2 renders the same.
"""
import json
import os
import sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

here = os.path.dirname(os.path.abspath(__file__))


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(fmt):
    return datetime.now().strftime(fmt)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = strftime_now


def load(d):
    cfg = json.load(open(os.path.join(here, d, "tokenizer_config.json")))
    tpl = cfg.get("chat_template")
    path = os.path.join(here, d, "chat_template.jinja")
    if os.path.exists(path):
        tpl = open(path).read()
    special = {}
    for k in ("bos_token", "eos_token", "unk_token", "pad_token"):
        v = cfg.get(k)
        if isinstance(v, dict):
            v = v["content"]
        if v is not None:
            special[k] = v
    return env.from_string(tpl), special


bad = 0
for c in json.load(open(os.path.join(here, "cases.json"))):
    tpl, special = load(c["dir"])
    out = tpl.render(messages=c["messages"], add_generation_prompt=c["add_generation_prompt"], **special, **c.get("kwargs", {}))
    ok = out == c["expected"]
    bad += not ok
    print("ok  " if ok else "DIFF", c["name"])
    if not ok:
        print("  jinja2:  ", json.dumps(out))
        print("  expected:", json.dumps(c["expected"]))
sys.exit(1 if bad else 0)
