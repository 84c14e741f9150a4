"""Benchmark: `notifications.dispatch.dispatch` against naive one-by-one Apprise sends.

    python bench/dispatch_bench.py [--notifications 10000] [--recipients 200] [--concurrency 8] [--naive-sample 5]
                                   [--naive-spread 20] [--smtp process|thread] [--no-serial] [--profile] [--keep]

What is measured, and why. The pipeline queues one outbox row per message; the dispatcher
claims them, composes ONE letter per recipient and sends the recipients in a thread pool, each
through a fresh copy of its Apprise server. The obvious alternative is to hand every queued
message to one `apprise.Apprise` object, one `notify(body, title, tag=recipient)` at a time.
That is slow for two reasons: one SMTP conversation per message instead of one per recipient,
and Apprise's throttle, which makes a server object wait 5.5 s between two of its sends.

The run, all against a real SMTP server (tests/receivers.py's SmtpReceiver: aiosmtpd on
loopback, with AUTH), started in a child process so that its parsing of every mail does not
compete with the sender for this interpreter's GIL (`--smtp thread` runs it in a thread here,
as the tests do). Besides wall time, the table shows the CPU seconds of the sender (this
process, all threads) and of the server's process during each timed call:

* a fresh SQLite registry in a temp dir (`init_db`) with N reminders queued by `queue()` for R
  recipient tags `ministry:m000`..: realistic Russian subject, text and HTML (rendered by the
  project's own templates), one external id each, interleaved as a daily run would queue them;
* an Apprise YAML file with one mailto:// URL per tag, each to its own address;
* project, concurrency=C: `dispatch()` timed; then checked: every row `sent`, the server got
  exactly R mails, each to its own address, with exactly its own external ids and no other's;
* project, concurrency=1: the same on a copy of the same registry (what the pool buys);
* naive, same server: `--naive-sample` messages of ONE recipient through one Apprise object
  loaded with the same file — the throttled case, the one every recipient hits from its 2nd
  message on;
* naive, spread: one message each for `--naive-spread` different recipients — first sends on
  fresh server objects, so never throttled: the floor of the naive approach.

Sending all N naively would take hours, so the naive figures are measured on the samples and
extrapolated to N. Figures only: nothing here fails on time; the script exits non-zero on a
crash or when a delivery check fails (a wrong or missing row, mail, address or id).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Self

# before the imports below (ruff's E402 allows these two kinds of statement there): the project
# (followup, tests.receivers) from this checkout, and Prefect quiet from its first import on
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import apprise
from sqlalchemy import func, select
from sqlmodel import Session

from followup.config.notifications import Delivery
from followup.config.office import office_contact
from followup.models.crud import init_db
from followup.models.db import get_engine
from followup.models.followup import Notification
from followup.notifications.dispatch import claim, deliver_to, dispatch, load_routes, secrets_of
from followup.notifications.outbox import queue
from followup.notifications.render import render
from tests.receivers import SmtpReceiver

APPRISE_THROTTLE_S = 5.5  # apprise.plugins.base.NotifyBase.request_rate_per_sec (mailto:// inherits it)
PLACEHOLDER = "QQ-EXTERNAL-ID-QQ"
YEAR = 2026

MINISTRIES = [
    "Министерство внутренних дел Республики Казахстан",
    "Министерство здравоохранения Республики Казахстан",
    "Министерство труда и социальной защиты населения Республики Казахстан",
    "Министерство просвещения Республики Казахстан",
    "Министерство юстиции Республики Казахстан",
]
FACILITIES = [
    "ИВС Департамента полиции г. Кокшетау №2",
    "Учреждение ЕЦ-166/18 г. Караганда",
    "Центр психического здоровья №3 г. Шымкент",
    "Центр оказания специальных социальных услуг №7 г. Актобе",
    "Детский дом №4 г. Павлодар",
    "ИВС Департамента полиции г. Уральск №1",
    "Учреждение ЕЦ-166/5 г. Семей",
]
TEXTS = [
    "Обеспечить камеры ИВС естественным освещением и приточной вентиляцией; в ходе визита выявлено отсутствие окон в двух камерах.",
    "Обеспечить круглосуточный доступ к питьевой воде и к санитарным узлам с перегородками во всех жилых помещениях.",
    "Организовать медицинский осмотр каждого поступающего с фиксацией телесных повреждений и уведомлением прокурора.",
    "Оборудовать прогулочные дворики навесами и скамьями, обеспечить ежедневную прогулку продолжительностью не менее двух часов.",
    "Разместить в общедоступных местах информацию о правах содержащихся лиц и о порядке подачи жалоб на казахском и русском языках.",
    "Укомплектовать штат психологом и социальным работником; провести обучение персонала по вопросам предупреждения пыток.",
    "Исключить применение мер физического стеснения без назначения врача и без записи в журнале; вести видеозапись каждого случая.",
    "Обеспечить доступность здания для лиц с инвалидностью: пандусы, поручни, адаптированные санитарные узлы.",
]


# --- the data -----------------------------------------------------------------------------------


def tag_of(index: int, width: int) -> str:
    return f"ministry:m{index:0{width}d}"


def address_of(index: int, width: int) -> str:
    return f"kanc-m{index:0{width}d}@ministry.gov.kz"


def make_messages(n: int, recipients: int, formal: int = 0) -> tuple[list[dict], int]:
    """N reminders, one external id each, interleaved over the recipients (message i -> recipient i % R),
    and FORMAL individualized recommendations, one each for the first FORMAL recipients, each
    listing one more id of its own. The dispatcher sends a recipient's routine rows as one message
    and every formal document as a message of its own (`notifications.dispatch.messages_of`).

    The project's templates render a handful of variants with a placeholder id (rendering all N
    through Jinja would take longer than the dispatch being measured); each message gets its own id.
    """
    width = max(3, len(str(recipients - 1)))
    id_width = max(5, len(str(n + formal - 1)))
    as_of = date(YEAR, 3, 2)
    answering = {"reply_link": "https://ombudsman.example.kz/reply/bench-token", "link_expires_on": as_of + timedelta(days=60),
                 "contact": office_contact("ru")}
    variants = []
    for v in range(len(TEXTS)):
        due = as_of + timedelta(days=3 + v)
        item = {"external_id": PLACEHOLDER, "facility": FACILITIES[v % len(FACILITIES)], "text": TEXTS[v], "due_on": due}
        context = {"as_of": as_of, "reference": f"NPM-R-{v}", "ministry": MINISTRIES[v % len(MINISTRIES)], "due_soon": [item],
                   "overdue": [], **answering}
        variants.append(render("reminder", "ru", context))
    messages = []
    for i in range(n):
        external_id = f"NPM-{YEAR}-{i:0{id_width}d}"
        r = variants[i % len(variants)]
        messages.append({
            "recipient": tag_of(i % recipients, width),
            "kind": "reminder",
            "subject": f"{r.subject}: {external_id}",
            "body_text": r.text.replace(PLACEHOLDER, external_id),
            "body_html": r.html.replace(PLACEHOLDER, external_id),
            "payload": {"as_of": as_of.isoformat(), "due_soon": [external_id], "overdue": []},
            "dedupe_key": f"reminder:bench:{external_id}",
            "_external_id": external_id,
        })
    item = {"external_id": PLACEHOLDER, "facility": FACILITIES[0], "text": TEXTS[0], "due_on": as_of - timedelta(days=20)}
    document = render("individualized", "ru", {
        "as_of": as_of, "reference": "01-02/бенч", "issued_on": as_of, "ministry": MINISTRIES[0],
        "legal_basis": "Закон о Уполномоченном по правам человека", "response_due_on": as_of + timedelta(days=30),
        "items": [item], "signer": None, **answering})
    for k in range(formal):
        external_id = f"NPM-{YEAR}-{n + k:0{id_width}d}"
        messages.append({
            "recipient": tag_of(k % recipients, width),
            "kind": "individualized",
            "subject": f"{document.subject}: {external_id}",
            "body_text": document.text.replace(PLACEHOLDER, external_id),
            "body_html": document.html.replace(PLACEHOLDER, external_id),
            "payload": {"reference": f"IR-bench-{k}", "items": [external_id]},
            "dedupe_key": f"individualized:bench:{k}",
            "_external_id": external_id,
        })
    return messages, id_width


def write_ministries(path: Path, recipients: int) -> Path:
    """A ministries file naming the bench's R recipients (m000..), so that the routes' ministry
    tags pass the dispatcher's check that each names a known ministry."""
    width = max(3, len(str(recipients - 1)))
    lines = ["ministries:"]
    for i in range(recipients):
        code = f"m{i:0{width}d}"
        lines += [f"  - code: {code}", "    names:", f"      kk: Министрлік {code}", f"      ru: Министерство {code}",
                  f"      en: Ministry {code}", "    language: ru"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_routes(path: Path, smtp: SmtpReceiver | SmtpServer, recipients: int) -> Path:
    width = max(3, len(str(recipients - 1)))
    lines = ["version: 1", "urls:"]
    for i in range(recipients):
        lines += [f"  - {smtp.url(address_of(i, width))}:", f"      tag: {tag_of(i, width)}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def build_registry(path: Path, messages: list[dict]) -> None:
    url = f"sqlite:///{path}"
    init_db(url)
    engine = get_engine(url)
    with Session(engine) as session, session.begin():
        inserted = queue(session, [{k: v for k, v in m.items() if not k.startswith("_")} for m in messages])
    engine.dispose()
    if len(inserted) != len(messages):
        raise SystemExit(f"queue() inserted {len(inserted)} of {len(messages)} messages")


def copy_registry(template: Path, target: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{template}{suffix}")
        if source.exists():
            shutil.copyfile(source, f"{target}{suffix}")
    return f"sqlite:///{target}"


# --- the SMTP server ----------------------------------------------------------------------------


def ids_in(text: str, id_width: int) -> set[str]:
    return set(re.findall(rf"NPM-{YEAR}-\d{{{id_width}}}(?!\d)", text))


def summarize(mails: list, id_width: int) -> list[dict]:
    """What the checks need of each received mail (so a child process need not ship whole messages)."""
    return [
        {"recipients": list(m.recipients), "text_ids": ids_in(m.text, id_width), "html_ids": ids_in(m.html, id_width),
         "bytes": len(m.message.as_bytes())}
        for m in mails
    ]


def _smtp_child(connection) -> None:
    """tests.receivers.SmtpReceiver in its own process; answers ("collect", id_width) and ("stop",)."""
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    with SmtpReceiver() as smtp:
        connection.send((smtp.port, time.process_time()))
        seen = 0
        while True:
            command = connection.recv()
            if command[0] == "stop":
                break
            with smtp.lock:
                new = smtp.mails[seen:]
                seen += len(new)
            cpu = time.process_time()  # before summarizing: the CPU the server spent receiving
            connection.send((summarize(new, command[1]), cpu))


class SmtpServer:
    """The local SMTP server: tests.receivers.SmtpReceiver, in a spawned child process (like a real
    mail server: its parsing of every message does not compete with the sender for this
    interpreter's GIL) or, with `--smtp thread`, in a thread of this process as the tests run it."""

    def __init__(self, where: str = "process") -> None:
        self.where = where

    def __enter__(self) -> Self:
        if self.where == "process":
            context = get_context("spawn")
            self.connection, child = context.Pipe()
            self.process = context.Process(target=_smtp_child, args=(child,), daemon=True)
            self.process.start()
            port, self.cpu_mark = self.connection.recv()
        else:
            self.receiver = SmtpReceiver().__enter__()
            self.seen = 0
            port = self.receiver.port
        self.urls = SmtpReceiver(port=port)  # not started: only its .url() helper, for the same server
        return self

    def url(self, to: str) -> str:
        return self.urls.url(to)

    def collect(self, id_width: int) -> tuple[list[dict], float | None]:
        """The mails received since the last call, in order of arrival, and the CPU seconds the
        server spent meanwhile (None when it runs in this process: not separable)."""
        if self.where == "process":
            self.connection.send(("collect", id_width))
            mails, cpu = self.connection.recv()
            spent, self.cpu_mark = cpu - self.cpu_mark, cpu
            return mails, spent
        with self.receiver.lock:
            new = self.receiver.mails[self.seen:]
            self.seen += len(new)
        return summarize(new, id_width), None

    def __exit__(self, *exc) -> None:
        if self.where == "process":
            self.connection.send(("stop",))
            self.process.join(10)
        else:
            self.receiver.__exit__(*exc)


# --- the checks ---------------------------------------------------------------------------------


def check_project(label: str, engine, mails: list[dict], messages: list[dict], recipients: int, failures: list[str]) -> None:
    """Every row sent once; per recipient one mail of its routine rows and one per formal document,
    each to its own address, with exactly its own ids."""
    width = max(3, len(str(recipients - 1)))
    table = Notification.__table__
    with engine.connect() as c:
        statuses = dict(c.execute(select(table.c.status, func.count()).group_by(table.c.status)).all())
        attempts = dict(c.execute(select(table.c.attempts, func.count()).group_by(table.c.attempts)).all())
    if statuses != {"sent": len(messages)}:
        failures.append(f"{label}: row statuses {statuses}, expected {{'sent': {len(messages)}}}")
    if attempts != {1: len(messages)}:
        failures.append(f"{label}: row attempts {attempts}, expected {{1: {len(messages)}}}")

    # what each address must receive: one routine mail with all of its reminders' ids, and one
    # mail per formal document with exactly that document's id
    expected: dict[str, list[frozenset[str]]] = {}
    routine: dict[str, set[str]] = {}
    for m in messages:
        index = int(m["recipient"].rsplit("m", 1)[1])
        address = address_of(index, width)
        if m["kind"] == "reminder":
            routine.setdefault(address, set()).add(m["_external_id"])
        else:
            expected.setdefault(address, []).append(frozenset({m["_external_id"]}))
    for address, ids in routine.items():
        expected.setdefault(address, []).append(frozenset(ids))
    want_mails = sum(len(v) for v in expected.values())
    if len(mails) != want_mails:
        failures.append(f"{label}: the SMTP server received {len(mails)} mails, expected {want_mails}")
    got: dict[str, list[frozenset[str]]] = {}
    for mail in mails:
        if len(mail["recipients"]) != 1 or mail["recipients"][0] not in expected:
            failures.append(f"{label}: a mail went to {mail['recipients']}, expected exactly one known address")
            continue
        if mail["text_ids"] != mail["html_ids"]:
            failures.append(f"{label}: {mail['recipients'][0]}: the text and HTML parts list different ids")
        got.setdefault(mail["recipients"][0], []).append(frozenset(mail["html_ids"]))
    for address, want in expected.items():
        if sorted(got.get(address, []), key=sorted) != sorted(want, key=sorted):
            have = got.get(address, [])
            failures.append(f"{label}: {address} received {len(have)} mails with {sum(map(len, have))} ids, "
                            f"expected {len(want)} mails with {sum(map(len, want))} ids")


# --- the variants -------------------------------------------------------------------------------


def run_project(label: str, url: str, routes_dir: Path, messages: list[dict], recipients: int, id_width: int,
                concurrency: int, smtp_where: str, failures: list[str]) -> dict:
    engine = get_engine(url)
    delivery = Delivery(concurrency=concurrency)
    with SmtpServer(smtp_where) as smtp:
        routes = write_routes(routes_dir / f"apprise-{label}.yaml", smtp, recipients)
        print(f"[{label}] dispatch(concurrency={concurrency}) of {len(messages)} notifications ...", flush=True)
        started, cpu = time.perf_counter(), time.process_time()
        result = dispatch(engine=engine, apprise_file=routes, delivery=delivery)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        summary = result.summary()
        formal = sum(m["kind"] != "reminder" for m in messages)
        want = {"claimed": len(messages), "sent": len(messages), "messages": recipients + formal, "failed": 0, "dead": 0, "unroutable": 0}
        if summary != want:
            failures.append(f"{label}: dispatch summary {summary}, expected {want}")
        mails, server_cpu = smtp.collect(id_width)
    check_project(label, engine, mails, messages, recipients, failures)
    engine.dispose()
    size = sum(m["bytes"] for m in mails) / max(len(mails), 1)
    print(f"[{label}]   {seconds:.2f} s, {summary}, {len(mails)} mails of {size / 1024:.0f} KiB on average", flush=True)
    return {"variant": f"project, concurrency={concurrency}", "notifications": len(messages), "mails": len(mails), "seconds": seconds,
            "cpu": cpu, "server_cpu": server_cpu}


def run_naive(routes: Path, smtp: SmtpServer, messages: list[dict], recipients: int, id_width: int,
              same: int, spread: int, failures: list[str]) -> list[dict]:
    """One Apprise object, one notify() per message: first the throttled case, then the spread one."""
    width = max(3, len(str(recipients - 1)))
    sender = apprise.Apprise()
    config = apprise.AppriseConfig()
    config.add(str(routes))
    sender.add(config)
    len(sender)  # load the configuration now, not inside the timed loop
    first = tag_of(0, width)
    same_sample = [m for m in messages if m["recipient"] == first][:same]
    seen: set[str] = {first}
    spread_sample = []
    for m in messages:  # one message each for recipients not used above: first sends on their server objects
        if m["recipient"] not in seen and len(spread_sample) < spread:
            seen.add(m["recipient"])
            spread_sample.append(m)

    lines = []
    for label, sample, what in (
        ("naive, same server", same_sample, f"{len(same_sample)} notifications of {first}, one Apprise object"),
        ("naive, spread", spread_sample, f"{len(spread_sample)} notifications, each to another recipient"),
    ):
        print(f"[{label}] {what} ...", flush=True)
        smtp.collect(id_width)  # start the server's CPU clock here
        started, cpu = time.perf_counter(), time.process_time()
        ok = [sender.notify(body=m["body_text"], title=m["subject"], tag=m["recipient"]) for m in sample]
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        arrived, server_cpu = smtp.collect(id_width)
        if not all(ok):
            failures.append(f"{label}: {ok.count(False)} of {len(ok)} notify() calls returned False")
        if len(arrived) != len(sample):
            failures.append(f"{label}: the SMTP server received {len(arrived)} mails, expected {len(sample)}")
        for m, mail in zip(sample, arrived, strict=False):  # a missing or extra mail is the failure recorded above
            index = int(m["recipient"].rsplit("m", 1)[1])
            if mail["recipients"] != [address_of(index, width)] or mail["text_ids"] != {m["_external_id"]}:
                failures.append(f"{label}: {m['_external_id']} arrived as a mail to {mail['recipients']} with ids {mail['text_ids']}")
        print(f"[{label}]   {seconds:.2f} s, {len(arrived)} mails", flush=True)
        lines.append({"variant": label, "notifications": len(sample), "mails": len(arrived), "seconds": seconds,
                      "cpu": cpu, "server_cpu": server_cpu})
    return lines


def profile_dispatch(url: str, routes_dir: Path, recipients: int, smtp_where: str, top: int) -> str:
    """cProfile of the dispatcher's own steps on one thread: claim, then deliver_to per recipient.

    (`dispatch` sends from pool threads, which cProfile does not follow; this is its
    concurrency=1 path without the pool.)
    """
    import cProfile
    import io
    import pstats
    from datetime import timedelta as td

    from followup.models.types import utcnow

    engine = get_engine(url)
    delivery = Delivery(concurrency=1)
    with SmtpServer(smtp_where) as smtp:
        path = write_routes(routes_dir / "apprise-profile.yaml", smtp, recipients)
        profiler = cProfile.Profile()
        profiler.enable()
        routes = load_routes(path)
        secrets = secrets_of(routes)
        rows = claim(engine, now=utcnow(), lease=td(minutes=delivery.lease_minutes))
        by_recipient: dict[str, list] = {}
        for row in rows:
            by_recipient.setdefault(row.recipient, []).append(row)
        for recipient, batch in sorted(by_recipient.items()):
            deliver_to(recipient, batch, routes, engine=engine, delivery=delivery, secrets=secrets, apprise_file=path)
        profiler.disable()
    engine.dispose()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


# --- the table ----------------------------------------------------------------------------------


def print_table(lines: list[dict], n: int, naive: dict[str, float]) -> None:
    header = (f"{'variant':<26} {'notifications':>13} {'mails':>6} {'seconds':>8} {'notif/s':>8} {'mails/s':>8} "
              f"{'time for ' + str(n):>16} {'x naive same':>13} {'x naive spread':>15} {'CPU s':>6} {'SMTP CPU s':>11}")
    print(header)
    print("-" * len(header))
    for line in lines:
        rate = line["notifications"] / line["seconds"]
        extrapolated = n / rate
        estimate = "" if line["notifications"] == n else " (est.)"
        server = f"{line['server_cpu']:.1f}" if line["server_cpu"] is not None else "-"
        print(
            f"{line['variant']:<26} {line['notifications']:>13} {line['mails']:>6} {line['seconds']:>8.2f} {rate:>8.1f} "
            f"{line['mails'] / line['seconds']:>8.1f} {human(extrapolated) + estimate:>16} "
            f"{ratio(rate / naive['naive, same server']):>13} {ratio(rate / naive['naive, spread']):>15} {line['cpu']:>6.1f} {server:>11}"
        )


def ratio(x: float) -> str:
    return f"{x:.0f}x" if x >= 100 else f"{x:.1f}x" if x >= 1 else f"{x:.3f}x"


def human(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 3 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notifications", type=int, default=10_000)
    parser.add_argument("--recipients", type=int, default=200)
    parser.add_argument("--formal", type=int, default=20,
                        help="individualized recommendations queued besides the reminders, one each for the first FORMAL recipients "
                             "(each travels alone)")
    parser.add_argument("--concurrency", type=int, default=8, help="the project's pool size (Delivery.concurrency, 1..64)")
    parser.add_argument("--naive-sample", type=int, default=5, help="naive sends to ONE recipient (throttled: ~5.5 s each after the first)")
    parser.add_argument("--naive-spread", type=int, default=20, help="naive sends, one each to that many other recipients (never throttled)")
    parser.add_argument("--smtp", choices=("process", "thread"), default="process",
                        help="run the SMTP server in a child process (default) or in a thread of this one, as the tests do")
    parser.add_argument("--no-serial", dest="serial", action="store_false", help="skip the concurrency=1 run")
    parser.add_argument("--profile", action="store_true", help="also cProfile the dispatcher's steps on one thread and print the hot spots")
    parser.add_argument("--profile-top", type=int, default=25)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (registries, Apprise files)")
    args = parser.parse_args(argv)
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd warns "login_data is deprecated" on every AUTH
    if args.recipients < 2 or args.notifications < args.recipients:
        parser.error("need at least 2 recipients and at least one notification per recipient")
    args.naive_spread = min(args.naive_spread, args.recipients - 1)

    workdir = Path(tempfile.mkdtemp(prefix="followup_dispatch_bench_"))
    failures: list[str] = []
    lines: list[dict] = []
    try:
        os.environ["FOLLOWUP_MINISTRIES_FILE"] = str(write_ministries(workdir / "ministries.yaml", args.recipients))
        started = time.perf_counter()
        messages, id_width = make_messages(args.notifications, args.recipients, args.formal)
        template = workdir / "registry.db"
        build_registry(template, messages)
        per = Counter(m["recipient"] for m in messages)
        print(
            f"queued {len(messages)} notifications for {len(per)} recipients ({min(per.values())}..{max(per.values())} each) "
            f"into {template} in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        with SmtpReceiver() as warm:  # load Apprise's plugins and the project's imports once, untimed
            load_routes(write_routes(workdir / "apprise-warm.yaml", warm, 2))

        variants = [args.concurrency] + ([1] if args.serial and args.concurrency != 1 else [])
        for concurrency in variants:
            url = copy_registry(template, workdir / f"registry-c{concurrency}.db")
            lines.append(run_project(f"c{concurrency}", url, workdir, messages, args.recipients, id_width, concurrency, args.smtp, failures))

        with SmtpServer(args.smtp) as smtp:
            routes = write_routes(workdir / "apprise-naive.yaml", smtp, args.recipients)
            lines += run_naive(routes, smtp, messages, args.recipients, id_width, args.naive_sample, args.naive_spread, failures)

        profile = None
        if args.profile:
            print("[profile] cProfile of claim + deliver_to per recipient, one thread ...", flush=True)
            profile = profile_dispatch(copy_registry(template, workdir / "registry-profile.db"), workdir, args.recipients, args.smtp, args.profile_top)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    naive = {line["variant"]: line["notifications"] / line["seconds"] for line in lines if line["variant"].startswith("naive")}
    per_recipient = args.notifications / args.recipients
    print()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, apprise {apprise.__version__}, "
          f"{args.notifications} notifications for {args.recipients} recipients, "
          f"SMTP server (aiosmtpd) on loopback in {'a child process' if args.smtp == 'process' else 'a thread of this process'}")
    print()
    print_table(lines, args.notifications, naive)
    print()
    print("notes:")
    print(f"  'time for {args.notifications}' of the naive lines is extrapolated from the sample at the sample's rate.")
    print("  CPU s: this process (the sender, all threads) during the timed call; SMTP CPU s: the server's process meanwhile.")
    floor = max(args.notifications / naive["naive, spread"], (per_recipient - 1) * APPRISE_THROTTLE_S)
    print(
        f"  naive in queue order, best case: each server object must wait {APPRISE_THROTTLE_S} s between its "
        f"{per_recipient:.0f} sends, so at least max({args.notifications} / {naive['naive, spread']:.1f}/s, "
        f"{per_recipient - 1:.0f} x {APPRISE_THROTTLE_S} s) = {human(floor)} (est.)"
    )
    if profile:
        print()
        print("--- cProfile: claim + deliver_to per recipient, one thread ---")
        print(profile)
    if failures:
        print()
        print("WRONG RESULTS:")
        for failure in failures:
            print(f"  {failure}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
