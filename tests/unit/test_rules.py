"""Format rules as TOML: the shipped defaults, mission overrides, and errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from firstlight.checks.rules import KeywordType, RulesError, load_rules
from firstlight.domain.manifest import ProductType
from firstlight.domain.release import ObsField

VALIDATIONS = Path(__file__).resolve().parents[2] / "validations"

OBSERVATION_KEYWORDS = {"OBJECT", "TELESCOP", "INSTRUME", "DATE-OBS", "DATE-END"}
WAVE = {"WAVEMIN", "WAVEMAX"}


def rules_dir(tmp_path: Path, default: str, **missions: str) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir(parents=True)
    (folder / "default.toml").write_text(default)
    for mission, text in missions.items():
        profile = tmp_path / "missions" / mission
        profile.mkdir(parents=True)
        (profile / "rules.toml").write_text(text)
    return tmp_path


def required(rules_keywords: dict[str, object]) -> set[str]:
    return {name for name, rule in rules_keywords.items() if getattr(rule, "required", False)}


def test_shipped_defaults_follow_the_fits_standard() -> None:
    """Checksums verified when present, keywords checked when present, nothing required."""
    rules = load_rules(VALIDATIONS, "anymission")
    for product_type in ProductType:
        product = rules.for_product(product_type)
        assert not product.checksums
        assert not product.celestial_wcs
        assert product.table is None
        for keywords in product.keywords.values():
            assert required(dict(keywords)) == set()
    image = rules.for_product(ProductType.IMAGE)
    assert set(image.keywords["primary"]) == OBSERVATION_KEYWORDS | WAVE | {"CALIBLEV"}
    assert image.keywords["primary"]["DATE-OBS"].type is KeywordType.DATE
    assert rules.observation.required == ()
    assert rules.sources == (VALIDATIONS / "rules" / "default.toml",)


def test_synthetic_mission_profile_is_strict() -> None:
    """missions/demo/rules.toml keeps everything the generator writes catchable."""
    rules = load_rules(VALIDATIONS, "demo")
    image = rules.for_product(ProductType.IMAGE)
    assert image.checksums
    assert image.celestial_wcs
    assert required(dict(image.keywords["primary"])) == OBSERVATION_KEYWORDS | WAVE
    assert image.keywords["primary"]["CALIBLEV"].allowed == (0, 1, 2, 3, 4)
    for product_type, extname, columns in (
        (ProductType.SPECTRUM, "SPECTRUM", ("WAVELENGTH", "FLUX")),
        (ProductType.TIMESERIES, "LIGHTCURVE", ("TIME", "FLUX")),
    ):
        product = rules.for_product(product_type)
        assert product.checksums
        assert not product.celestial_wcs
        assert product.table is not None
        assert (product.table.extname, product.table.columns) == (extname, columns)
        assert required(dict(product.keywords["primary"])) == (
            OBSERVATION_KEYWORDS | WAVE | {"RA", "DEC"}
        )
    assert rules.for_product(ProductType.CATALOGUE).checksums
    auxiliary = rules.for_product(ProductType.AUXILIARY)
    assert not auxiliary.checksums
    assert not auxiliary.keywords
    assert set(rules.observation.required) == set(ObsField)
    assert rules.sources == (
        VALIDATIONS / "rules" / "default.toml",
        VALIDATIONS / "missions" / "demo" / "rules.toml",
    )


def test_profile_requires_obscore_columns(tmp_path: Path) -> None:
    folder = rules_dir(
        tmp_path,
        "[image]\nchecksums = false\n",
        xmm='[observation]\nrequired = ["instrument_name", "t_min"]\n',
    )
    rules = load_rules(folder, "xmm")
    assert rules.observation.required == (ObsField.INSTRUMENT_NAME, ObsField.T_MIN)
    assert load_rules(folder, "gaia").observation.required == ()
    with pytest.raises(RulesError, match=r"observation\.required"):
        load_rules(
            rules_dir(tmp_path / "b", "", acme='[observation]\nrequired = ["t_mid"]\n'), "acme"
        )


def test_mission_file_replaces_a_product_type_whole(tmp_path: Path) -> None:
    folder = rules_dir(
        tmp_path,
        '[image]\nchecksums = true\n[image.keywords.primary]\nOBJECT = { type = "string" }\n'
        "[spectrum]\nchecksums = true\n",
        xmm='[image.keywords.SCI]\nEXPTIME = { type = "number", min = 0 }\n',
    )
    rules = load_rules(folder, "xmm")
    image = rules.for_product(ProductType.IMAGE)
    assert not image.checksums  # not inherited: the mission's [image] is the whole rule
    assert set(image.keywords) == {"SCI"}
    assert image.keywords["SCI"]["EXPTIME"].minimum == 0
    assert rules.for_product(ProductType.SPECTRUM).checksums  # untouched type kept
    assert rules.sources == (
        folder / "rules" / "default.toml",
        folder / "missions" / "xmm" / "rules.toml",
    )
    # Another mission has no file: the defaults alone.
    assert load_rules(folder, "gaia").for_product(ProductType.IMAGE).checksums


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[imgae]\nchecksums = true\n", "imgae"),
        ("[image]\nchecksum = true\n", "image.checksum"),
        ('[image.keywords.primary]\nOBJECT = { type = "string", requird = true }\n', "requird"),
        ('[image.keywords.primary]\nOBJECT = { type = "text" }\n', "image.keywords.primary"),
        ('[image.keywords.primary]\n"lower" = { type = "string" }\n', "lower"),
        ('[spectrum.table]\nextname = "SPECTRUM"\ncolumns = []\n', "spectrum.table.columns"),
    ],
)
def test_bad_rule_file_names_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    folder = rules_dir(tmp_path, "", acme=text)
    with pytest.raises(RulesError) as err:
        load_rules(folder, "acme")
    message = str(err.value)
    assert "missions/acme/rules.toml" in message
    assert key in message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[image.keywords.primary]\nX = { type = "string", min = 1 }\n', "min/max"),
        ('[image.keywords.primary]\nX = { type = "integer", allowed = ["a"] }\n', "allowed"),
        (
            '[image.keywords.primary]\nX = { type = "number" }\n[[image.order]]\n'
            'lower = "X"\nupper = "Y"\n',
            "'Y'",
        ),
        (
            '[image.keywords.primary]\nX = { type = "number" }\nY = { type = "date" }\n'
            '[[image.order]]\nlower = "X"\nupper = "Y"\n',
            "ordered type",
        ),
    ],
)
def test_inconsistent_rules(tmp_path: Path, text: str, words: str) -> None:
    folder = rules_dir(tmp_path, text)
    with pytest.raises(RulesError, match=r"default\.toml") as err:
        load_rules(folder, "acme")
    assert words in str(err.value)


def test_invalid_toml(tmp_path: Path) -> None:
    folder = rules_dir(tmp_path, "[image\n")
    with pytest.raises(RulesError, match="not valid TOML"):
        load_rules(folder, "acme")


def test_missing_defaults(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"default\.toml"):
        load_rules(tmp_path, "acme")


@pytest.mark.parametrize("mission", ["../etc", "Gaia", ""])
def test_mission_name_cannot_reach_other_files(tmp_path: Path, mission: str) -> None:
    folder = rules_dir(tmp_path, "")
    with pytest.raises(RulesError, match="mission"):
        load_rules(folder, mission)
