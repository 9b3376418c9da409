"""Country facts (the PyPI wheels countryinfo==1.0.1 and pycountry==26.2.16, download only).

countryinfo ships one JSON file per country (capital, region, demonym, ISO currency and language
codes); pycountry's ISO 4217 and ISO 639-3 tables turn those codes into names. Each country gives
up to five short-answer questions (capital, continent, demonym, currency, language) and one prose
paragraph stating the same facts, for the built-in general set (lifelong/data/general.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from lifelong.data.records import QAItem
from lifelong.data.sources import COUNTRYINFO, PYCOUNTRY, Package

PACKAGES: tuple[Package, ...] = (COUNTRYINFO, PYCOUNTRY)
DATA_PREFIX = "countryinfo/data/"
CURRENCIES = "pycountry/databases/iso4217.json"
LANGUAGES = "pycountry/databases/iso639-3.json"
# countryinfo's region "Americas" is split by its intermediate region; every other region is a continent.
AMERICAS = {"South America": "South America", "Central America": "North America", "Caribbean": "North America"}
MAX_ANSWER_WORDS = 3


@dataclass(frozen=True)
class Country:
    name: str
    capital: str | None
    continent: str | None
    demonym: str | None
    currency: str | None
    languages: tuple[str, ...]


def is_country_file(name: str) -> bool:
    return name.startswith(DATA_PREFIX) and name.endswith(".json")


def _continent(region: str | None, intermediate: str | None) -> str | None:
    if not region:
        return None
    if region == "Americas":
        return AMERICAS.get(intermediate or "", "North America")
    return region


def _short(value) -> str | None:
    text = str(value or "").strip()
    return text if text and len(text.split()) <= MAX_ANSWER_WORDS and len(text) <= 30 else None


def load(country_files: dict[str, bytes], currencies: bytes, languages: bytes) -> list[Country]:
    """Every country with a name, in name order; facts missing or too long to be a short answer are None."""
    currency_names = {row["alpha_3"]: row["name"] for row in json.loads(currencies)["4217"]}
    language_names = {row["alpha_2"]: row["name"] for row in json.loads(languages)["639-3"] if "alpha_2" in row}
    out = []
    for member in sorted(country_files):
        data = json.loads(country_files[member])
        name = str(data.get("name") or "").strip()
        if not name:
            continue
        codes = data.get("currencies") or []
        langs = tuple(language_names[c] for c in data.get("languages") or [] if c in language_names)
        out.append(Country(name=name, capital=_short(data.get("capital")),
                           continent=_continent(data.get("region"), data.get("intermediateregion")),
                           demonym=_short(data.get("demonym")),
                           currency=_short(currency_names.get(codes[0])) if codes else None,
                           languages=tuple(lang for lang in langs if _short(lang))))
    return sorted({c.name: c for c in out}.values(), key=lambda c: c.name)


def questions(country: Country) -> list[QAItem]:
    """The country's short-answer questions (eval split; the builder decides)."""
    out = []
    if country.capital:
        out.append(QAItem(f"What is the capital of {country.name}?", country.capital))
    if country.continent:
        out.append(QAItem(f"On which continent is {country.name}?", country.continent))
    if country.demonym:
        out.append(QAItem(f"What is the nationality of a person from {country.name}?", country.demonym))
    if country.currency:
        out.append(QAItem(f"What is the currency of {country.name}?", country.currency))
    if country.languages:
        out.append(QAItem(f"What language is spoken in {country.name}?", country.languages[0],
                          country.languages[1:]))
    return out


def document(country: Country) -> str:
    """A short paragraph stating the country's facts (general, textbook-like replay text)."""
    parts = [f"{country.name} is a country" + (f" in {country.continent}." if country.continent else ".")]
    if country.capital:
        parts.append(f"Its capital is {country.capital}.")
    if country.demonym:
        parts.append(f"A person from {country.name} is {country.demonym}.")
    if country.currency:
        parts.append(f"The currency of {country.name} is the {country.currency}.")
    if country.languages:
        spoken = ", ".join(country.languages[:3])
        parts.append(f"The language spoken there is {spoken}." if len(country.languages) == 1
                     else f"The languages spoken there include {spoken}.")
    return " ".join(parts)
