"""Validate docker-compose.yml against the Compose Specification schema, as `docker compose config`
would after interpolation, without a Docker engine.

Usage: python deploy/check_compose.py [docker-compose.yml] [.env.example]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft201909Validator

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "deploy" / "schemas" / "compose-spec.json"
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}; $$ is a literal $.
VAR_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_]\w*)")


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a compose .env file (comments and blanks skipped)."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            env[key.strip()] = value.strip().strip("'\"")
    return env


def referenced_variables(text: str) -> set[str]:
    """Names of the variables a compose file interpolates."""
    return {m.group(1) or m.group(4) for m in VAR_RE.finditer(text) if m.group(0) != "$$"}


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation rules for one string; ValueError when a required var is missing."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1) or m.group(4), m.group(2), m.group(3) or ""
        current = env.get(name)
        unset_or_empty = not current
        missing = unset_or_empty if op and op.startswith(":") else current is None
        if op in (":-", "-"):
            return arg if missing else str(current)
        if op in (":?", "?") and missing:
            raise ValueError(f"required variable {name} is missing: {arg}")
        return current or ""

    return VAR_RE.sub(sub, value)


def interpolate_tree(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: interpolate_tree(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(v, env) for v in node]
    if isinstance(node, str):
        return interpolate(node, env)
    return node


def schema_errors(document: Any) -> list[str]:
    """Schema violations, one line each, with the path inside the document."""
    # The file says draft 2019-09 under its old http://...# id, which jsonschema does not map.
    validator = Draft201909Validator(json.loads(SCHEMA.read_text()))
    return [
        f"{'/'.join(str(p) for p in err.absolute_path) or '<root>'}: {err.message}"
        for err in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]


def check(compose_path: Path, env_example: Path) -> list[str]:
    """Every problem found: undocumented variables, interpolation failures, schema errors."""
    text = compose_path.read_text()
    env = read_env_file(env_example)
    problems = [f"variable {v} is used in {compose_path.name} but not listed in {env_example.name}"
                for v in sorted(referenced_variables(text) - env.keys())]
    # Required values are blank in the example on purpose; fill them as a user would.
    filled = {k: v or f"placeholder-{k.lower()}" for k, v in env.items()}
    try:
        document = interpolate_tree(yaml.safe_load(text), filled)
    except ValueError as exc:
        return [*problems, str(exc)]
    problems += schema_errors(document)
    return problems


def main(argv: list[str]) -> int:
    compose = Path(argv[1]) if len(argv) > 1 else ROOT / "docker-compose.yml"
    env_example = Path(argv[2]) if len(argv) > 2 else ROOT / ".env.example"
    problems = check(compose, env_example)
    for problem in problems:
        print(f"{compose}: {problem}", file=sys.stderr)
    if not problems:
        print(f"{compose}: valid against {SCHEMA.relative_to(ROOT)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
