"""Random, obviously fake but format-valid secrets for the secrets tests (never real ones).

Every value is generated at test time from a seeded RNG; none of them was ever issued by a vendor.
"""

from __future__ import annotations

import base64
import random
import string
from collections.abc import Callable

ALNUM = string.ascii_letters + string.digits
UPPER_NUM = string.ascii_uppercase + string.digits
HEX = "0123456789abcdef"
B64 = string.ascii_letters + string.digits + "+/"


class Fakes:
    """Generators keyed by the rule id they should trigger."""

    def __init__(self, seed: int = 1234) -> None:
        self.rng = random.Random(seed)

    def s(self, alphabet: str, n: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def aws_pair(self) -> tuple[str, str]:
        return "AKIA" + self.s("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16), self.s(ALNUM + "/+", 40)

    def pem(self, kind: str = "RSA PRIVATE KEY") -> str:
        body = base64.b64encode(self.rng.randbytes(600)).decode()
        lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
        return f"-----BEGIN {kind}-----\n{lines}\n-----END {kind}-----\n"

    def samples(self) -> dict[str, Callable[[], str]]:
        """rule id -> a line of text holding one fresh secret for that rule."""
        s = self.s
        return {
            "aws-access-key-id": lambda: f"key = {self.aws_pair()[0]}",
            "aws-secret-access-key": lambda: f"aws_secret_access_key = {self.aws_pair()[1]}",
            "github-pat": lambda: f"token ghp_{s(ALNUM, 36)}",
            "github-fine-grained-pat": lambda: f"github_pat_{s(ALNUM + '_', 82)}",
            "github-oauth": lambda: f"x gho_{s(ALNUM, 36)}",
            "github-app-token": lambda: f"x ghs_{s(ALNUM, 36)}",
            "github-refresh-token": lambda: f"x ghr_{s(ALNUM, 76)}",
            "gitlab-pat": lambda: f"glpat-{s(ALNUM, 20)}",
            "gitlab-deploy-token": lambda: f"gldt-{s(ALNUM, 20)}",
            "gitlab-pipeline-trigger-token": lambda: f"glptt-{s(HEX, 40)}",
            "bitbucket-app-password": lambda: f"pw ATBB{s(ALNUM, 32)}",
            "npm-access-token": lambda: f"//registry: npm_{s(ALNUM, 36)}",
            "pypi-upload-token": lambda: f"pypi-AgEIcHlwaS5vcmc{s(ALNUM + '-_', 70)}",
            "docker-hub-pat": lambda: f"dckr_pat_{s(ALNUM + '-_', 27)}",
            "slack-bot-token": lambda: (
                f"xoxb-{s(string.digits, 12)}-{s(string.digits, 12)}-{s(ALNUM, 24)}"
            ),
            "slack-webhook-url": lambda: (
                "https://hooks.slack.com/services/"
                f"T{s(UPPER_NUM, 10)}/B{s(UPPER_NUM, 10)}/{s(ALNUM, 24)}"
            ),
            "discord-webhook-url": lambda: (
                f"https://discord.com/api/webhooks/{s(string.digits, 18)}/{s(ALNUM + '_-', 68)}"
            ),
            "teams-webhook-url": lambda: (
                f"https://acme.webhook.office.com/webhookb2/{self.uuid()}@{self.uuid()}"
                f"/IncomingWebhook/{s(HEX, 32)}/{self.uuid()}"
            ),
            "stripe-secret-key": lambda: f"sk_live_{s(ALNUM, 24)}",
            "stripe-webhook-secret": lambda: f"whsec_{s(ALNUM, 32)}",
            "square-access-token": lambda: f"t sq0atp-{s(ALNUM, 22)}",
            "shopify-token": lambda: f"shpat_{s(HEX, 32)}",
            "sendgrid-api-key": lambda: f"k SG.{s(ALNUM, 22)}.{s(ALNUM, 43)}",
            "gcp-api-key": lambda: f"k AIza{s(ALNUM, 35)}",
            "azure-storage-account-key": lambda: (
                f"DefaultEndpointsProtocol=https;AccountName=x;AccountKey={s(ALNUM, 86)}=="
            ),
            "openai-api-key": lambda: f"sk-proj-{s(ALNUM, 74)}T3BlbkFJ{s(ALNUM, 74)}",
            "anthropic-api-key": lambda: f"sk-ant-api03-{s(ALNUM, 93)}AA",
            "huggingface-token": lambda: f"t hf_{s(string.ascii_letters, 34)}",
            "hashicorp-vault-token": lambda: f"t hvs.{s(ALNUM, 95)}",
            "digitalocean-token": lambda: f"dop_v1_{s(HEX, 64)}",
            "age-secret-key": lambda: (
                "AGE-SECRET-KEY-1" + s("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)
            ),
            "jwt": lambda: (
                "t " + ".".join(["eyJ" + s(ALNUM, 30), "eyJ" + s(ALNUM, 60), s(ALNUM + "_-", 43)])
            ),
            "private-key": lambda: self.pem("EC PRIVATE KEY"),
            "openssh-private-key": lambda: self.pem("OPENSSH PRIVATE KEY"),
            "pgp-private-key": lambda: self.pem("PGP PRIVATE KEY BLOCK"),
            "postgres-uri-password": lambda: f"postgres://app:{s(ALNUM, 16)}@db.internal:5432/x",
            "mongodb-uri-password": lambda: (
                f"mongodb+srv://app:{s(ALNUM, 16)}@cluster0.x7kq2.mongodb.net"
            ),
            "redis-uri-password": lambda: f"redis://:{s(ALNUM, 16)}@cache:6379/0",
            "jdbc-password": lambda: f"jdbc:mysql://db:3306/x?user=app&password={s(ALNUM, 14)}",
            "url-credentials": lambda: f"https://deploy:{s(ALNUM, 16)}@git.internal.net/x.git",
            "http-bearer-token": lambda: f"Authorization: Bearer {s(ALNUM, 40)}",
            "curl-user-password": lambda: f"curl -u admin:{s(ALNUM, 14)} https://x.internal/",
            "generic-password": lambda: f"db_password = {s(ALNUM, 14)}",
            "generic-secret": lambda: f"client_secret: {s(ALNUM, 30)}",
            "generic-token": lambda: f"auth_token = {s(ALNUM, 30)}",
            "generic-api-key": lambda: f"my_api_key='{s(ALNUM, 32)}'",
        }

    def uuid(self) -> str:
        h = self.s(HEX, 32)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
