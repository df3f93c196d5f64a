"""Check template.yaml offline: cfn-lint on it, then SAM-translate it and cfn-lint the result.

Runs in the template tools' own virtual environment (.venv-tools: cfn-lint,
aws-sam-translator), which pins an older pydantic than the app's:
    .venv-tools/bin/python tests/template_check.py template.yaml
Exit status 0 when both pass; the findings are printed otherwise.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def main(path: str) -> int:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    cfn_lint = [str(Path(sys.executable).parent / "cfn-lint")]
    first = subprocess.run(cfn_lint + [path], capture_output=True, text=True)
    if first.returncode:
        print("cfn-lint on the SAM template:\n" + first.stdout + first.stderr)
        return 1

    from samtranslator.public.exceptions import InvalidDocumentException
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    class NoManagedPolicies:
        def load(self):
            return {}

    try:
        translated = transform(yaml_parse(Path(path).read_text()), {}, NoManagedPolicies())
    except InvalidDocumentException as exc:
        print("aws-sam-translator:\n" + "\n".join(cause.message for cause in exc.causes))
        return 1
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as out:
        json.dump(translated, out)
    try:
        second = subprocess.run(cfn_lint + [out.name], capture_output=True, text=True)
    finally:
        os.unlink(out.name)
    if second.returncode:
        print("cfn-lint on the translated template:\n" + second.stdout + second.stderr)
        return 1
    print("template ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "template.yaml"))
