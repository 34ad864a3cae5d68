from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import Settings, SettingsError


def test_defaults_need_no_environment(tmp_path: Path) -> None:
    settings = Settings.from_env({}, cwd=tmp_path)

    assert settings.kafka_bootstrap == "127.0.0.1:9092"
    assert settings.http_port == 8080
    assert settings.state_dir == tmp_path / ".state"
    assert settings.database_url == f"sqlite:///{tmp_path / '.state' / 'moderation.db'}"
    assert settings.model_path == tmp_path / ".state" / "model"
    assert (settings.topic_comments, settings.topic_decisions, settings.topic_dlq) == (
        "comments",
        "comment-decisions",
        "comments-dlq",
    )
    assert settings.max_text_chars == 20_000
    assert settings.transactional_id == f"moderation-{settings.instance_id}"


def test_environment_overrides_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "MODERATION_STATE_DIR": "/srv/mod",
            "MODERATION_KAFKA_BOOTSTRAP": "k1:9092,k2:9092",
            "MODERATION_TOPIC_COMMENTS": "site.comments",
            "MODERATION_INSTANCE_ID": "pod-3",
            "MODERATION_SPAM_REJECT_AT": "0.97",
            "MODERATION_ABUSE_APPROVE_BELOW": "0.2",
            "MODERATION_POLICY_VERSION": "2026-11",
        },
        cwd=tmp_path,
    )

    assert settings.state_dir == Path("/srv/mod")
    assert settings.model_path == Path("/srv/mod/model")
    assert settings.kafka_bootstrap == "k1:9092,k2:9092"
    assert settings.topic_comments == "site.comments"
    assert settings.transactional_id == "moderation-pod-3"
    assert settings.policy.default.spam.reject_at == 0.97
    assert settings.policy.default.abuse.approve_below == 0.2
    assert settings.policy.version == "2026-11"


def test_every_bad_value_is_reported_at_once_by_name(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {
                "MODERATION_HTTP_PORT": "eighty",
                "MODERATION_KAFKA_BOOTSTRAP": "localhost",
                "MODERATION_TOPIC_DLQ": "bad topic!",
                "MODERATION_SPAM_REJECT_AT": "nan",
                "MODERATION_DATABASE_URL": "mysql://x",
                "MODERATION_BATCH_MAX_RECORDS": "0",
            },
            cwd=tmp_path,
        )

    problems = "\n".join(caught.value.problems)
    assert len(caught.value.problems) == 6
    for name in (
        "HTTP_PORT",
        "KAFKA_BOOTSTRAP",
        "TOPIC_DLQ",
        "SPAM_REJECT_AT",
        "DATABASE_URL",
        "BATCH_MAX_RECORDS",
    ):
        assert f"MODERATION_{name}=" in problems


def test_thresholds_in_the_wrong_order_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="approve_below <= reject_at"):
        Settings.from_env(
            {"MODERATION_ABUSE_APPROVE_BELOW": "0.9", "MODERATION_ABUSE_REJECT_AT": "0.3"},
            cwd=tmp_path,
        )


def test_blank_values_mean_the_default(tmp_path: Path) -> None:
    assert Settings.from_env({"MODERATION_HTTP_PORT": "  "}, cwd=tmp_path).http_port == 8080


def test_the_learning_loop_settings_have_defaults_and_are_checked(tmp_path: Path) -> None:
    settings = Settings.from_env({}, cwd=tmp_path)
    assert (settings.topic_reports, settings.topic_appeals) == (
        "comment-reports",
        "comment-appeals",
    )
    assert settings.model_reload_seconds == 10.0
    assert settings.shadow_model_path is None

    custom = Settings.from_env(
        {"MODERATION_SHADOW_MODEL_PATH": "cand", "MODERATION_MODEL_RELOAD_SECONDS": "0"},
        cwd=tmp_path,
    )
    assert custom.shadow_model_path == tmp_path / "cand"
    assert custom.model_reload_seconds == 0.0

    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {"MODERATION_TOPIC_REPORTS": "no spaces", "MODERATION_MODEL_RELOAD_SECONDS": "-1"},
            cwd=tmp_path,
        )
    problems = "\n".join(caught.value.problems)
    assert "MODERATION_TOPIC_REPORTS=" in problems
    assert "MODERATION_MODEL_RELOAD_SECONDS=" in problems


def test_a_model_path_that_is_a_link_stays_the_link(tmp_path: Path) -> None:
    (tmp_path / "v1").mkdir()
    (tmp_path / "model").symlink_to("v1")

    settings = Settings.from_env({"MODERATION_MODEL_PATH": "model"}, cwd=tmp_path)

    assert settings.model_path == tmp_path / "model"  # a promotion repoints it: follow that


def test_the_coral_budget_sits_below_the_phase_timeout(tmp_path: Path) -> None:
    default = Settings.from_env({}, cwd=tmp_path)
    longer = Settings.from_env({"MODERATION_CORAL_TIMEOUT_MS": "1000"}, cwd=tmp_path)

    # Coral's phase form defaults the timeout to 200 ms: we answer well before it
    assert default.coral_timeout_seconds == 0.2
    assert default.coral_budget_seconds <= default.coral_timeout_seconds - 0.05
    assert longer.coral_budget_seconds > default.coral_budget_seconds
    assert longer.coral_budget_seconds <= longer.coral_timeout_seconds - 0.05


@pytest.mark.parametrize(
    "env",
    [
        {"MODERATION_CORAL_BUDGET_MS": "200"},  # the old default: Coral gives up first
        {"MODERATION_CORAL_TIMEOUT_MS": "500", "MODERATION_CORAL_BUDGET_MS": "460"},
    ],
)
def test_a_coral_budget_too_close_to_the_timeout_is_refused(
    tmp_path: Path, env: dict[str, str]
) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env, cwd=tmp_path)

    [problem] = caught.value.problems
    assert "MODERATION_CORAL_BUDGET_MS" in problem
    assert "MODERATION_CORAL_TIMEOUT_MS" in problem


def test_coral_defaults_follow_how_coral_uses_the_answer(tmp_path: Path) -> None:
    settings = Settings.from_env({}, cwd=tmp_path)

    assert settings.coral_staff == "score"  # staff reaching the phase are not trusted by Coral
    assert settings.coral_on_approve == "no_opinion"  # 204: Coral's pre-moderation still runs
    assert settings.coral_format == "html"  # the phase form's default


def test_supported_languages_and_what_the_others_get_are_settings(tmp_path: Path) -> None:
    default = Settings.from_env({}, cwd=tmp_path).policy.default.languages
    settings = Settings.from_env(
        {
            "MODERATION_SUPPORTED_LANGUAGES": "en, FR",
            "MODERATION_UNSUPPORTED_LANGUAGE": "score",
        },
        cwd=tmp_path,
    )

    assert (default.supported, default.on_unsupported.value) == (frozenset({"en"}), "review")
    languages = settings.policy.default.languages
    assert (languages.supported, languages.on_unsupported.value) == (
        frozenset({"en", "fr"}),
        "score",
    )


def test_bad_language_settings_are_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {
                "MODERATION_SUPPORTED_LANGUAGES": "english",
                "MODERATION_UNSUPPORTED_LANGUAGE": "drop",
            },
            cwd=tmp_path,
        )

    assert caught.value.problems == [
        "MODERATION_SUPPORTED_LANGUAGES='english': comma-separated ISO 639 language codes "
        "(2 or 3 letters), e.g. en,fr",
        "MODERATION_UNSUPPORTED_LANGUAGE='drop': one of review, approve, score",
    ]


@pytest.mark.parametrize("raw", ["0", "3601", "soon", "nan"])
def test_an_undo_window_outside_1_to_3600_seconds_is_refused(tmp_path: Path, raw: str) -> None:
    with pytest.raises(SettingsError, match="MODERATION_UNDO_SECONDS"):
        Settings.from_env({"MODERATION_UNDO_SECONDS": raw}, cwd=tmp_path)


def test_the_undo_window_defaults_to_ten_seconds(tmp_path: Path) -> None:
    assert Settings.from_env({}, cwd=tmp_path).undo_seconds == 10.0
    assert Settings.from_env({"MODERATION_UNDO_SECONDS": "3"}, cwd=tmp_path).undo_seconds == 3.0
