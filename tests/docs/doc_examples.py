#!/usr/bin/env python3
"""Every shell example of README.md and docs/*.md, tried as a newcomer would.

Examples are the lines of ```sh blocks and `lrgd ...` code spans in the prose. Each runs,
in order per file, in one scratch folder per file (so an example can use what an earlier
one of the same file wrote), with these changes, all printed:
  - sizes scaled down (--users, --trials, --epochs, ...; see scale());
  - the placeholder models M.gguf / MODEL.gguf become a tiny random-weight model;
  - --endpoint URLs point at a llama-server started here on that tiny model;
  - real models (smollm2-135m, gemma3-270m) run when cached, else are only parsed.
  - `python3 scripts/X.py ...` runs the checkout's script in the scratch folder.
Commands that cannot run here are parsed by the CLI (LRGD_PARSE_ONLY=1: every option and
value is checked, nothing runs); the setup scripts are checked with `bash -n`.
Synopses (``` blocks without a language, or code spans with placeholders such as FILE,
"…" or "a|b") are checked against the command's --help: every option they name exists.

Exit 0 when every example passes, 1 otherwise; a table on stdout, JSON with --json.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Placeholders that make a command a synopsis: "…", "...", FILE/DIR-like words or a lone
# capital ("report A B C"), alternatives "a|b", optional parts "[--x]", "<name>".
SYNOPSIS_MARKS = re.compile(r"…|\.\.\.|\b[A-Z][A-Z_]{2,}\b(?!\.gguf)|(?<![\w./-])[A-Z](?![\w.-])|\S\|\S|\s\|\s|\[--|<[a-z]")
# A command in the prose with one of these is complete enough to be parsed by the CLI.
COMPLETE_MARKS = {"--data", "-o", "--out", "-m", "--model", "--memory"}
REAL_MODELS = {"smollm2-135m", "gemma3-270m"}


def extract(path: Path):
    """(line, kind, text): kind is 'example' (run it), 'parse' (a complete command in the
    prose: parsed by the CLI) or 'synopsis' (its command and options must exist)."""
    out = []
    lines = path.read_text(encoding="utf-8").splitlines()
    prose = []  # the file with fenced blocks blanked (line numbers kept), for code spans
    fence = None  # language of the open fence, '' for none
    pending = ""  # a command continued with a backslash
    start = 0
    for i, raw in enumerate(lines, 1):
        stripped = raw.strip()
        prose.append("" if fence is not None or stripped.startswith("```") else raw)
        if stripped.startswith("```"):
            fence = stripped[3:].strip() if fence is None else None
            continue
        if fence is not None:
            if fence in ("sh", "bash", "console"):
                text = raw.strip()
                if not text or text.startswith("#"):
                    continue
                if pending:
                    text = pending + " " + text
                else:
                    start = i
                if text.endswith("\\"):
                    pending = text[:-1].strip()
                    continue
                pending = ""
                out.append((start, "example", text))
            elif fence == "":
                if stripped.startswith("lrgd "):
                    out.append((i, "synopsis", stripped))
                elif out and out[-1][1] == "synopsis" and stripped.startswith(("[", "--", "options:", "(")):
                    # A continuation line of the synopsis above: its options belong to it.
                    line, kind, text = out[-1]
                    if line >= i - 12:
                        out[-1] = (line, kind, text + " " + stripped.removeprefix("options:"))
            continue
    text = "\n".join(prose)
    # Code spans may wrap over lines within a paragraph, not across one.
    for m in re.finditer(r"`([^`\n]+(?:\n[^`\n]+)?)`", text):
        span = " ".join(m.group(1).split())
        if span.startswith(("lrgd ", "scripts/")) and len(span.split()) > 1:
            line = text.count("\n", 0, m.start()) + 1
            w = span.split()
            complete = not SYNOPSIS_MARKS.search(span) and any(
                x in COMPLETE_MARKS and i + 1 < len(w) and not w[i + 1].startswith("-") for i, x in enumerate(w))
            out.append((line, "parse" if complete else "synopsis", span))
    out.sort(key=lambda x: x[0])
    return out


def options_of(words):
    return [w.split("=")[0] for w in words if w.startswith("--") and len(w) > 2]


def subcommand_of(words):
    """The words after 'lrgd' up to the first option or argument that is not a subcommand."""
    sub = []
    for w in words[1:]:
        if w.startswith("-") or not re.fullmatch(r"[a-z][a-z-]*", w) or len(sub) == 2:
            break
        sub.append(w)
    return sub


class Runner:
    def __init__(self, args):
        self.lrgd = str(Path(args.lrgd).resolve())
        self.root = Path(args.root).resolve()
        self.work = Path(tempfile.mkdtemp(prefix="lrgd-doc-examples-"))
        self.llama_bin = args.llama_bin
        self.help_cache = {}
        self.tiny = None
        self.server = None
        self.server_url = None
        self.env = dict(os.environ)
        self.env["PATH"] = str(Path(self.lrgd).parent) + os.pathsep + self.env.get("PATH", "")
        self.env["LRGD_DATA"] = str((self.root / ".." / "shared" / "data" / "amazon18-games").resolve())
        self.cached = self.cached_models()

    def cached_models(self):
        r = subprocess.run([self.lrgd, "model", "list"], capture_output=True, text=True)
        return {l.split()[0] for l in r.stdout.splitlines()[1:] if " cached " in f" {l} "}

    def tiny_model(self):
        if self.tiny is None:
            self.tiny = self.work / "tiny.gguf"
            subprocess.run(
                [self.lrgd, "model", "init", "--arch", "llama", "--layers", "2", "--width", "64", "--heads", "4",
                 "--kv-heads", "2", "--ctx", "4096", "--type", "q8_0", "-o", str(self.tiny)],
                check=True, capture_output=True)
        return str(self.tiny)

    def endpoint(self):
        if self.server is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            self.server = subprocess.Popen(
                [str(Path(self.llama_bin) / "llama-server"), "-m", self.tiny_model(), "--host", "127.0.0.1", "--port",
                 str(port), "-c", "8192", "-np", "2", "-t", "2", "--no-webui"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            self.server_url = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    time.sleep(0.2)
        return self.server_url

    def close(self):
        if self.server is not None:
            os.killpg(self.server.pid, signal.SIGTERM)
            self.server.wait()
        shutil.rmtree(self.work, ignore_errors=True)

    def help_text(self, sub):
        key = tuple(sub)
        if key not in self.help_cache:
            r = subprocess.run([self.lrgd, *sub, "--help"], capture_output=True, text=True)
            self.help_cache[key] = r.stdout + r.stderr
        return self.help_cache[key]

    def check_synopsis(self, text):
        words = text.replace("[", " ").replace("]", " ").replace("|", " ").replace("(", " ").replace(")", " ").split()
        sub = subcommand_of(words)
        help_text = self.help_text(sub)
        if sub == ["ablate"]:  # ablate hands every option it does not know to lrgd eval
            help_text += self.help_text(["eval"])
        # A synopsis may list several subcommands ("memory list|best|export"): each one's help counts.
        for w in words[len(sub) + 1:]:
            if not re.fullmatch(r"[a-z][a-z-]*", w) or len(sub) < 2:
                break
            help_text += self.help_text(sub[:-1] + [w])
        missing = [o for o in options_of(words) if not re.search(re.escape(o) + r"\b", help_text)]
        if missing:
            return False, "options not in `lrgd " + " ".join(sub) + " --help`: " + ", ".join(missing)
        return True, "options checked against --help"

    def scale(self, words):
        """Scaled-down sizes for `lrgd` commands; the changes are reported."""
        sub = subcommand_of(words)
        w = list(words)

        def setopt(name, value, add=True):
            if name in w:
                i = w.index(name)
                if i + 1 < len(w):
                    w[i + 1] = value
            elif add:
                w.extend([name, value])

        if sub[:1] == ["eval"] or sub[:1] == ["ablate"]:
            setopt("--users", "3")
            setopt("--trials", "1")
            if "--rounds" in w or "lrgd" in w:
                setopt("--rounds", "2", add=False)
        if sub[:1] == ["demo"]:
            setopt("--users", "3")
            setopt("--trials", "1")
            setopt("--epochs", "1")
            setopt("--real-users", "2")
        if sub[:2] == ["model", "train"]:
            setopt("--epochs", "1")
            setopt("--max-users", "300")
        if sub[:2] == ["model", "eval-items"]:
            setopt("--users", "20")
        if sub[:2] == ["data", "prepare"]:
            setopt("--users", "20")
        if sub[:1] == ["dual"]:
            setopt("--features", "16,64")
            setopt("--generate", "2")
        return w

    def run_example(self, text, cwd, parse_only=False):
        words = shlex.split(text, comments=True)
        if not words:
            return "skipped", True, "empty"
        prog = words[0]
        if prog == "python3" and len(words) > 1 and words[1].startswith("scripts/"):
            # A Python script of this checkout (standard library only), run in the scratch folder.
            args = [str((self.root / x).resolve()) if x.startswith("../shared/data/") else x for x in words[2:]]
            r = subprocess.run([sys.executable, str(self.root / words[1]), *args], cwd=cwd, capture_output=True,
                               text=True, timeout=600)
            return "ran", r.returncode == 0, (f"exit {r.returncode}: " + r.stderr.strip()[-400:]) if r.returncode else ""
        if prog.startswith("scripts/"):
            r = subprocess.run(["bash", "-n", str(self.root / prog)], capture_output=True, text=True)
            return "bash -n", r.returncode == 0, (r.stderr.strip() or "syntax ok (the script is the CI itself)")
        if prog in ("cmake", "export"):
            if prog == "cmake" and "--install" in words:
                prefix = cwd / "prefix"
                r = subprocess.run(["cmake", "--install", str(Path(self.lrgd).parents[2]), "--prefix", str(prefix)],
                                   capture_output=True, text=True)
                ok = r.returncode == 0 and (prefix / "bin" / "lrgd").is_file()
                return "ran (prefix in scratch)", ok, (r.stdout + r.stderr).strip()[-300:]
            return "skipped", True, "shell set-up"
        if prog.startswith("build/bench/"):
            return "skipped", True, "a benchmark (bench/), not a CLI example"
        if prog.startswith("build/tools/lrgd/lrgd") or prog == "lrgd":
            words[0] = self.lrgd
        else:
            return "failed", False, "unknown program " + prog
        notes = []
        for i, x in enumerate(words):
            if x in ("M.gguf", "MODEL.gguf"):
                words[i] = self.tiny_model()
            if x.startswith("http://127.0.0.1:"):
                words[i] = self.endpoint()
                notes.append("endpoint: llama-server on the tiny model")
            if x.startswith("../shared/data/"):
                words[i] = str((self.root / x).resolve())
            if x in REAL_MODELS and x not in self.cached and words[1:3] != ["model", "pull"]:
                parse_only = True
                notes.append(x + " is not cached: parsed only")
        if words[1:3] == ["model", "pull"] and "--from" not in words and words[3] not in self.cached:
            parse_only = True
            notes.append("not cached: parsed only (a pull downloads 100-250 MiB)")
        if "--from" in words and not Path(words[words.index("--from") + 1]).expanduser().exists():
            parse_only = True
            notes.append("the --from file is a reader's own: parsed only")
        if words[1:2] == ["demo"] and "--model" not in words and "--data" in words:
            parse_only = True  # trains on all of Games: minutes, as scripts/demo.sh does in CI already
            notes.append("trains on all of Games (scripts/demo.sh runs it): parsed only")
        scaled = self.scale(words)
        if scaled != words:
            notes.append("scaled: " + " ".join(shlex.quote(x) for x in scaled[1:]))
        env = dict(self.env)
        if parse_only:
            env["LRGD_PARSE_ONLY"] = "1"
        t0 = time.time()
        try:
            r = subprocess.run(scaled, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            return "failed", False, "timed out after 600 s"
        took = time.time() - t0
        ok = r.returncode == 0
        detail = "; ".join(notes)
        if not ok:
            detail = (detail + "; " if detail else "") + f"exit {r.returncode}: " + (r.stderr.strip()[-400:])
        return ("parsed" if parse_only else f"ran {took:.1f}s"), ok, detail


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lrgd", required=True)
    ap.add_argument("--root", required=True, help="the checkout (README.md, docs/)")
    ap.add_argument("--llama-bin", required=True, help="folder of llama-server")
    ap.add_argument("--json", help="write every result here")
    ap.add_argument("--only", help="only this file (relative to the root)")
    args = ap.parse_args()
    root = Path(args.root)
    if not (root / ".." / "shared" / "data" / "amazon18-games").is_dir():
        print("doc examples: ../shared/data/amazon18-games is not beside the checkout; skipped")
        return 77
    files = [root / "README.md"] + sorted((root / "docs").glob("*.md"))
    if args.only:
        files = [root / args.only]
    runner = Runner(args)
    results = []
    try:
        for f in files:
            cwd = runner.work / f.stem
            cwd.mkdir(parents=True, exist_ok=True)
            for line, kind, text in extract(f):
                where = f"{f.relative_to(root)}:{line}"
                if kind == "synopsis":
                    how = "synopsis"
                    ok, detail = runner.check_synopsis(text)
                else:
                    how, ok, detail = runner.run_example(text, cwd, parse_only=kind == "parse")
                results.append({"where": where, "kind": kind, "how": how, "ok": ok, "command": text,
                                "detail": detail})
                print(f"{'ok  ' if ok else 'FAIL'} {where:<22} {how:<14} {text[:90]}", flush=True)
                if detail and not ok:
                    print("       " + detail.replace("\n", "\n       "), flush=True)
    finally:
        runner.close()
    n_fail = sum(1 for r in results if not r["ok"])
    by_how = {}
    for r in results:
        key = r["how"].split()[0]
        by_how[key] = by_how.get(key, 0) + 1
    print(f"\n{len(results)} examples in {len(files)} files: " +
          ", ".join(f"{v} {k}" for k, v in sorted(by_how.items())) + f"; {n_fail} failed")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
