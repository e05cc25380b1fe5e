"""doc/restore.md's tested command blocks, for test_restore_*.py.

The guide's commands are fenced ```sh blocks, each right after an HTML
comment `<!-- test: NAME -->`.  A test file takes the part of the guide it
proves (Part: the sections whose "## " heading matches a pattern), checks
that the part has no code a test does not run (Part.check), and runs the
blocks as they stand with `bash -euo pipefail`, the guide's variables set
to the test's paths (Runner).

    PART = guide.Part(r"5\\. ", "section 5")
    PART.check({"mysql-vars", ...}, "mysql-vars", {"SET", "DATADIR", ...})
    out = guide.Runner(PART, work, SET=backup, ...).run("mysql-restore-datadir")
"""
import os
import re
import subprocess

import kfs

GUIDE = os.path.join(kfs.SRCDIR, "doc", "restore.md")


def sections(heading):
    """The text of every section whose heading is "## " + a match of the
    regular expression heading (with its ### subsections)."""
    with open(GUIDE) as f:
        text = f.read()
    parts = re.split(r"(?m)^(?=## )", text)
    mine = [p for p in parts if re.match("## " + heading, p)]
    assert mine, "no section '## %s' in doc/restore.md" % heading
    return "".join(mine)


def parse_blocks(text, where):
    """{name: code} of the ```sh blocks marked <!-- test: name -->; fails on
    any fenced block that is not marked."""
    blocks, lines, i = {}, text.splitlines(), 0
    while i < len(lines):
        if lines[i].startswith("```"):
            m = re.fullmatch(r"<!-- test: ([a-z0-9-]+) -->", lines[i - 1].strip())
            assert m and lines[i] == "```sh", \
                "unmarked code block in %s of doc/restore.md: %r" % (where, lines[i + 1])
            j = lines.index("```", i + 1)
            assert m.group(1) not in blocks, "block %s twice" % m.group(1)
            blocks[m.group(1)] = "\n".join(lines[i + 1:j]) + "\n"
            i = j
        i += 1
    return blocks


class Part:
    """Sections of the guide and their marked blocks."""

    def __init__(self, heading, where):
        self.where = where
        self.text = sections(heading)
        self.blocks = parse_blocks(self.text, where)

    def check(self, names, vars_block, variables):
        """Every command of the part is in a marked block, the marked blocks
        are `names` (the ones the test runs), and the variables block sets
        exactly `variables`."""
        assert set(self.blocks) == set(names), \
            "blocks of %s: %s" % (self.where, set(self.blocks) ^ set(names))
        prev = ""
        for line in self.text.splitlines():
            assert not (line.startswith("    ") and prev.strip() == ""), \
                "indented code block in %s (not run by a test): %r" % (self.where, line)
            prev = line
        found = set(re.findall(r"^([A-Z_]+)=", self.blocks[vars_block], re.M))
        assert found == set(variables), "the guide's variables changed: %s" % found


class Runner:
    """Runs a part's blocks with the test's variables.

    prefix: argv the block's `bash -euo pipefail -c CODE` is appended to
    (e.g. a namespace where /etc/imapd.conf is the test server's); env:
    more environment (e.g. HOME with a .my.cnf).  Output goes to files, not
    pipes: a server a block starts must not hold the test up."""

    def __init__(self, part, work, prefix=(), env=None, with_stderr=False, **variables):
        self.part = part
        self.work = work
        self.prefix = list(prefix)
        self.env = dict(env or {})
        self.with_stderr = with_stderr
        self.vars = dict(variables)

    def run(self, name, check=True, prefix=None, **more):
        """Run block name (more: variables for this run only); its stdout
        (with_stderr: and stderr)."""
        code = self.part.blocks[name]
        env = dict(os.environ, **self.env, **{**self.vars, **more})
        used = set(re.findall(r"\$\{?([A-Z_]+)", code))
        assigned = set(re.findall(r"^\s*([A-Z_]+)=", code, re.M)) | set(
            re.findall(r"\bfor ([A-Z_]+) in\b", code))
        missing = used - assigned - set(env)
        assert not missing, "block %s: unset %s" % (name, missing)
        argv = (self.prefix if prefix is None else list(prefix)) + [
            "bash", "-euo", "pipefail", "-c", code]
        out, err = (os.path.join(self.work, "block." + s) for s in ("out", "err"))
        with open(out, "w+") as fo, open(err, "w+") as fe:
            p = subprocess.run(argv, env=env, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
                               cwd=self.work, timeout=600)
            fo.seek(0)
            fe.seek(0)
            stdout, stderr = fo.read(), fe.read()
        if check:
            assert p.returncode == 0, "block %s failed (%d):\n%s\nstdout: %s\nstderr: %s" % (
                name, p.returncode, code, stdout, stderr)
        return stdout + stderr if self.with_stderr else stdout
