"""Print src/mint/aws_waiters.tsv: the API operation each `aws SERVICE wait WAITER` polls.

src/mint/aws_policy.rs reads it to give a waiter's minted credentials exactly the action it calls
(a waiter is not an operation of its own, and its name does not say which one it polls:
`s3api wait object-exists` calls HeadObject, `lambda wait function-active` GetFunctionConfiguration).

Reads: the installed awscli and the botocore it pins (CI: awscli==1.45.11, as for
catalogs/aws.tsv); no network, AWS_* scrubbed and an empty HOME, as catalogs/gen/aws.py does.
Regenerate (from the repository root): python3 catalogs/gen/aws_waiters.py > src/mint/aws_waiters.tsv
"""

import os
import tempfile

for name in list(os.environ):
    if name.startswith("AWS_"):
        del os.environ[name]
os.environ["HOME"] = tempfile.mkdtemp()

import awscli  # noqa: E402
import botocore  # noqa: E402
from awscli.clidriver import create_clidriver  # noqa: E402
from botocore import xform_name  # noqa: E402

driver = create_clidriver()
rows = []
for cli_name, command in driver._get_command_table().items():
    try:
        model = command._get_service_model()
        waiters = driver.session.get_waiter_model(model.service_name)
    except Exception:
        continue  # awscli's own commands (s3, configure, ...) and services without waiters
    for waiter in waiters.waiter_names:
        rows.append(f"{cli_name} {xform_name(waiter, '-')}\t{waiters.get_waiter(waiter).operation}")
print(f"# aws SERVICE WAITER<TAB>operation it polls (botocore {botocore.__version__}, awscli {awscli.__version__})")
print("# generate: python3 catalogs/gen/aws_waiters.py")
print("\n".join(sorted(rows)))
