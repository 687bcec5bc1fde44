"""Run the test provider: migrate its SQLite database, load users and the portal's clients from a
JSON file, then serve on 127.0.0.1:<port> until killed.

    python -m tests.sso.provider.serve <port> <setup.json>
"""

import json
import os
import sys
from pathlib import Path


def main() -> None:
    port, setup_file = int(sys.argv[1]), sys.argv[2]
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.sso.provider.settings"
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command
    from django.core.servers.basehttp import run
    from oauth2_provider.models import Application

    call_command("migrate", verbosity=0, interactive=False)
    setup = json.loads(Path(setup_file).read_text())
    for spec in setup["users"]:
        user = User.objects.create_user(
            spec["username"],
            spec["email"],
            spec["password"],
            first_name=spec.get("first_name", ""),
            last_name=spec.get("last_name", ""),
        )
        for name in spec.get("groups", []):
            user.groups.add(Group.objects.get_or_create(name=name)[0])
    for client in setup["clients"]:
        Application.objects.create(
            name=client["id"],
            client_id=client["id"],
            client_secret=client["secret"],
            redirect_uris=" ".join(client["redirect_uris"]),
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
            algorithm=Application.RS256_ALGORITHM,
            skip_authorization=True,
        )
    print("ready", flush=True)
    run("127.0.0.1", port, WSGIHandler(), threading=True)


if __name__ == "__main__":
    main()
