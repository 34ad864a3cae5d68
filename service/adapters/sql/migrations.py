"""Versioned schema migrations. Append new versions; never edit an applied one.

Timestamps are integer epoch milliseconds (UTC) in both dialects, so one set of queries
serves both. `{autoid}` and `{blob}` are the dialect's auto-increment key and byte types.
"""

from __future__ import annotations

from typing import Final

MIGRATIONS: Final[tuple[tuple[int, str, tuple[str, ...]], ...]] = (
    (
        1,
        "comments, review queue, outbox, audit",
        (
            """
            CREATE TABLE comments (
                site_id TEXT NOT NULL,
                comment_id TEXT NOT NULL,
                text TEXT NOT NULL,
                author_id TEXT,
                author_name TEXT,
                thread_id TEXT,
                created_at_ms BIGINT,
                spam DOUBLE PRECISION NOT NULL,
                abuse DOUBLE PRECISION NOT NULL,
                risk DOUBLE PRECISION NOT NULL,
                reasons TEXT NOT NULL,
                reason_codes TEXT NOT NULL,
                model_version TEXT NOT NULL,
                policy_version TEXT NOT NULL,
                auto_action TEXT NOT NULL,
                auto_decided_at_ms BIGINT NOT NULL,
                event_json TEXT NOT NULL,
                status TEXT,
                queued_at_ms BIGINT,
                claimed_by TEXT,
                claim_expires_at_ms BIGINT,
                decision TEXT,
                decided_by TEXT,
                decided_at_ms BIGINT,
                decision_reason TEXT,
                note TEXT,
                PRIMARY KEY (site_id, comment_id)
            )
            """,
            "CREATE INDEX comments_queue ON comments (status, site_id, queued_at_ms, comment_id)",
            "CREATE INDEX comments_risk ON comments (status, site_id, risk)",
            "CREATE INDEX comments_author ON comments (site_id, author_id, auto_decided_at_ms)",
            """
            CREATE TABLE outbox (
                id {autoid},
                event_id TEXT NOT NULL UNIQUE,
                topic TEXT NOT NULL,
                key {blob} NOT NULL,
                value {blob} NOT NULL,
                created_at_ms BIGINT NOT NULL,
                sent_at_ms BIGINT
            )
            """,
            "CREATE INDEX outbox_unsent ON outbox (sent_at_ms, id)",
            """
            CREATE TABLE audit (
                id {autoid},
                at_ms BIGINT NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                site_id TEXT,
                comment_id TEXT,
                detail TEXT NOT NULL
            )
            """,
            "CREATE INDEX audit_site ON audit (site_id, id)",
        ),
    ),
    (
        2,
        "text hashes and authors for flood and campaign rules",
        (
            "ALTER TABLE comments ADD COLUMN text_hash TEXT",
            "ALTER TABLE comments ADD COLUMN campaign_author TEXT",
            "CREATE INDEX comments_text ON comments (text_hash, auto_decided_at_ms)",
        ),
    ),
    (
        3,
        "reports, appeals, reporter reliability and the label store",
        (
            # reasons added by reports and appeals to the current review round (JSON list)
            "ALTER TABLE comments ADD COLUMN flags TEXT",
            "ALTER TABLE comments ADD COLUMN report_weight DOUBLE PRECISION NOT NULL DEFAULT 0",
            "CREATE INDEX comments_reports ON comments (status, site_id, report_weight)",
            """
            CREATE TABLE feedback (
                id {autoid},
                kind TEXT NOT NULL,
                site_id TEXT NOT NULL,
                comment_id TEXT NOT NULL,
                actor_id TEXT NOT NULL,
                reason TEXT NOT NULL,
                received_at_ms BIGINT NOT NULL,
                outcome TEXT,
                UNIQUE (kind, site_id, comment_id, actor_id)
            )
            """,
            "CREATE INDEX feedback_open ON feedback (site_id, comment_id, outcome)",
            """
            CREATE TABLE reporters (
                site_id TEXT NOT NULL,
                reporter_id TEXT NOT NULL,
                upheld INTEGER NOT NULL DEFAULT 0,
                dismissed INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (site_id, reporter_id)
            )
            """,
            """
            CREATE TABLE labels (
                id {autoid},
                site_id TEXT NOT NULL,
                comment_id TEXT NOT NULL,
                text TEXT NOT NULL,
                label TEXT NOT NULL,
                auto_action TEXT NOT NULL,
                final_action TEXT NOT NULL,
                overturned INTEGER NOT NULL,
                labelled_by TEXT NOT NULL,
                labelled_at_ms BIGINT NOT NULL
            )
            """,
            "CREATE INDEX labels_time ON labels (labelled_at_ms, id)",
            "CREATE INDEX labels_site ON labels (site_id, labelled_at_ms)",
        ),
    ),
    (
        4,
        "where each label's reason came from: the moderator, or a guess",
        (
            # Until now the page sent the model's own belief (abuse if the abuse score beat the
            # spam score, else spam) as a rejection's reason, and the API put `other` for a
            # rejection that named none; a label row cannot tell those from a reason an API
            # client chose, so every earlier rejection is marked guessed. Kept as moderator's:
            # approvals (their `ok` is the action itself) and rejections whose comment still
            # holds that decision with a reason neither the page nor the default ever sent.
            "ALTER TABLE labels ADD COLUMN reason_source TEXT NOT NULL DEFAULT 'guessed'",
            """
            UPDATE labels SET reason_source = 'moderator'
            WHERE final_action = 'approve' OR EXISTS (
                SELECT 1 FROM comments c
                WHERE c.site_id = labels.site_id AND c.comment_id = labels.comment_id
                  AND c.decision = 'reject' AND c.decided_by = labels.labelled_by
                  AND c.decided_at_ms = labels.labelled_at_ms
                  AND c.decision_reason IN ('off_topic', 'personal_info')
            )
            """,
        ),
    ),
    (
        5,
        "abuse sub-scores and the language of each decided comment",
        (
            # a JSON object of the sub-scores the model gave ({} or NULL: none)
            "ALTER TABLE comments ADD COLUMN sub_scores TEXT",
            # ISO 639 code or 'und'; NULL: neither given nor detected (and every earlier row)
            "ALTER TABLE comments ADD COLUMN language TEXT",
            "ALTER TABLE comments ADD COLUMN language_detected INTEGER",
        ),
    ),
    (
        6,
        "the comment each one answers and the article it is under (comment event 1.1)",
        (
            # the parent's comment_id on the same site; NULL: a top-level comment (and every
            # earlier row: parents were not kept before)
            "ALTER TABLE comments ADD COLUMN parent_id TEXT",
            # an http(s) URL (the codec refuses anything else) and the article's title
            "ALTER TABLE comments ADD COLUMN thread_url TEXT",
            "ALTER TABLE comments ADD COLUMN thread_title TEXT",
        ),
    ),
    (
        7,
        "authors trusted or blocked on a site by its moderators",
        (
            # one row per (site, author): trusted or blocked; no row, neither (the file's lists
            # apply on their own)
            """
            CREATE TABLE author_status (
                site_id TEXT NOT NULL,
                author_id TEXT NOT NULL,
                status TEXT NOT NULL,
                note TEXT,
                set_by TEXT NOT NULL,
                set_at_ms BIGINT NOT NULL,
                PRIMARY KEY (site_id, author_id)
            )
            """,
        ),
    ),
    (
        8,
        "spot checks: sampled automatic decisions and the verdicts on them",
        (
            # 1: the pipeline sampled this approval or rejection for a moderator to check
            "ALTER TABLE comments ADD COLUMN spot_check INTEGER NOT NULL DEFAULT 0",
            # 1: the label is a verdict on a spot check (an unbiased sample of its action)
            "ALTER TABLE labels ADD COLUMN spot_check INTEGER NOT NULL DEFAULT 0",
            "CREATE INDEX labels_spot ON labels (spot_check, site_id)",
        ),
    ),
    (
        9,
        "bulk actions held for their undo window",
        (
            # One row per bulk action: pending for its undo window, then applied or undone.
            # The status moves only by a conditional update (WHERE status = 'pending'), so
            # instances sharing the database never both apply, or apply and undo, one action.
            """
            CREATE TABLE bulk_actions (
                id TEXT PRIMARY KEY,
                site_id TEXT NOT NULL,
                moderator_id TEXT NOT NULL,
                action TEXT NOT NULL,
                reason TEXT NOT NULL,
                reason_given INTEGER NOT NULL,
                note TEXT,
                status TEXT NOT NULL,
                created_at_ms BIGINT NOT NULL,
                apply_at_ms BIGINT NOT NULL,
                finished_at_ms BIGINT
            )
            """,
            "CREATE INDEX bulk_actions_due ON bulk_actions (status, apply_at_ms)",
            "CREATE INDEX bulk_actions_moderator ON bulk_actions (moderator_id, status)",
            """
            CREATE TABLE bulk_items (
                action_id TEXT NOT NULL,
                position INTEGER NOT NULL,
                site_id TEXT NOT NULL,
                comment_id TEXT NOT NULL,
                outcome TEXT,
                PRIMARY KEY (action_id, position)
            )
            """,
            "CREATE INDEX bulk_items_comment ON bulk_items (site_id, comment_id)",
        ),
    ),
    (
        10,
        "the queue's indexes hold only the rows that were ever queued",
        (
            # Most comments are decided automatically and never queued (status NULL): their
            # rows need no entry in the indexes that serve the queue, the risk order and the
            # reports. Every query on those indexes names a status (= or IN), which implies
            # IS NOT NULL, so SQLite and PostgreSQL still use them. One index insert per
            # comment instead of four on the pipeline's path.
            "DROP INDEX comments_queue",
            "CREATE INDEX comments_queue ON comments (status, site_id, queued_at_ms, comment_id) "
            "WHERE status IS NOT NULL",
            "DROP INDEX comments_risk",
            "CREATE INDEX comments_risk ON comments (status, site_id, risk) "
            "WHERE status IS NOT NULL",
            "DROP INDEX comments_reports",
            "CREATE INDEX comments_reports ON comments (status, site_id, report_weight) "
            "WHERE status IS NOT NULL",
        ),
    ),
    (
        11,
        "the text-hash index holds only the comments that were hashed",
        (
            # The pipeline hashes a text only while some policy has a campaign rule (the one
            # reader of the hash): the other rows have none and need no entry here. The
            # campaign query names the hashes (IN), which implies IS NOT NULL.
            "DROP INDEX comments_text",
            "CREATE INDEX comments_text ON comments (text_hash, auto_decided_at_ms) "
            "WHERE text_hash IS NOT NULL",
        ),
    ),
)
