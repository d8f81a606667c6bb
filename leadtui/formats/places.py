"""States, countries and location lines (FORMATS 2.6, 3.4 and appendix 10.1-10.2)."""

from __future__ import annotations

import re
from typing import NamedTuple

# 10.1: two-letter state and union-territory codes used by BuyLead mails.
STATE_CODES: dict[str, str] = {
    "AN": "Andaman and Nicobar Islands",
    "AP": "Andhra Pradesh",
    "AR": "Arunachal Pradesh",
    "AS": "Assam",
    "BR": "Bihar",
    "CH": "Chandigarh",
    "CG": "Chhattisgarh",
    "CT": "Chhattisgarh",
    "DN": "Dadra and Nagar Haveli and Daman and Diu",
    "DD": "Dadra and Nagar Haveli and Daman and Diu",
    "DL": "Delhi",
    "GA": "Goa",
    "GJ": "Gujarat",
    "HR": "Haryana",
    "HP": "Himachal Pradesh",
    "JK": "Jammu and Kashmir",
    "JH": "Jharkhand",
    "KA": "Karnataka",
    "KL": "Kerala",
    "LA": "Ladakh",
    "LD": "Lakshadweep",
    "MP": "Madhya Pradesh",
    "MH": "Maharashtra",
    "MN": "Manipur",
    "ML": "Meghalaya",
    "MZ": "Mizoram",
    "NL": "Nagaland",
    "OD": "Odisha",
    "OR": "Odisha",
    "PY": "Puducherry",
    "PB": "Punjab",
    "RJ": "Rajasthan",
    "SK": "Sikkim",
    "TN": "Tamil Nadu",
    "TS": "Telangana",
    "TG": "Telangana",
    "TR": "Tripura",
    "UP": "Uttar Pradesh",
    "UK": "Uttarakhand",
    "UT": "Uttarakhand",
    "WB": "West Bengal",
}

# Full names, matched case-insensitively, plus the older spellings buyers still type.
STATE_NAMES: dict[str, str] = {name.casefold(): name for name in STATE_CODES.values()}
STATE_NAMES.update(
    {
        "orissa": "Odisha",
        "pondicherry": "Puducherry",
        "uttaranchal": "Uttarakhand",
        "new delhi": "Delhi",
        "nct of delhi": "Delhi",
        "jammu & kashmir": "Jammu and Kashmir",
        "andaman & nicobar islands": "Andaman and Nicobar Islands",
        "dadra and nagar haveli": "Dadra and Nagar Haveli and Daman and Diu",
        "daman and diu": "Dadra and Nagar Haveli and Daman and Diu",
    }
)

# 10.2: ISO 3166-1 alpha-2 by English name (short and common forms).
_ISO_COUNTRIES = """
AF Afghanistan|AX Aland Islands|AL Albania|DZ Algeria|AS American Samoa|AD Andorra|AO Angola
AI Anguilla|AQ Antarctica|AG Antigua and Barbuda|AR Argentina|AM Armenia|AW Aruba|AU Australia
AT Austria|AZ Azerbaijan|BS Bahamas|BH Bahrain|BD Bangladesh|BB Barbados|BY Belarus|BE Belgium
BZ Belize|BJ Benin|BM Bermuda|BT Bhutan|BO Bolivia|BQ Bonaire, Sint Eustatius and Saba
BA Bosnia and Herzegovina|BW Botswana|BV Bouvet Island|BR Brazil
IO British Indian Ocean Territory|BN Brunei|BN Brunei Darussalam|BG Bulgaria|BF Burkina Faso
BI Burundi|CV Cabo Verde|CV Cape Verde|KH Cambodia|CM Cameroon|CA Canada|KY Cayman Islands
CF Central African Republic|TD Chad|CL Chile|CN China|CX Christmas Island|CC Cocos Islands
CO Colombia|KM Comoros|CG Congo|CG Republic of the Congo|CD Democratic Republic of the Congo
CD DR Congo|CK Cook Islands|CR Costa Rica|CI Cote d'Ivoire|CI Ivory Coast|HR Croatia|CU Cuba
CW Curacao|CY Cyprus|CZ Czechia|CZ Czech Republic|DK Denmark|DJ Djibouti|DM Dominica
DO Dominican Republic|EC Ecuador|EG Egypt|SV El Salvador|GQ Equatorial Guinea|ER Eritrea
EE Estonia|SZ Eswatini|SZ Swaziland|ET Ethiopia|FK Falkland Islands|FO Faroe Islands|FJ Fiji
FI Finland|FR France|GF French Guiana|PF French Polynesia|TF French Southern Territories
GA Gabon|GM Gambia|GE Georgia|DE Germany|GH Ghana|GI Gibraltar|GR Greece|GL Greenland
GD Grenada|GP Guadeloupe|GU Guam|GT Guatemala|GG Guernsey|GN Guinea|GW Guinea-Bissau|GY Guyana
HT Haiti|HM Heard Island and McDonald Islands|VA Holy See|VA Vatican City|HN Honduras
HK Hong Kong|HU Hungary|IS Iceland|IN India|ID Indonesia|IR Iran|IQ Iraq|IE Ireland
IM Isle of Man|IL Israel|IT Italy|JM Jamaica|JP Japan|JE Jersey|JO Jordan|KZ Kazakhstan
KE Kenya|KI Kiribati|KP North Korea|KR South Korea|KR Korea|KW Kuwait|KG Kyrgyzstan|LA Laos
LV Latvia|LB Lebanon|LS Lesotho|LR Liberia|LY Libya|LI Liechtenstein|LT Lithuania
LU Luxembourg|MO Macao|MO Macau|MG Madagascar|MW Malawi|MY Malaysia|MV Maldives|ML Mali
MT Malta|MH Marshall Islands|MQ Martinique|MR Mauritania|MU Mauritius|YT Mayotte|MX Mexico
FM Micronesia|MD Moldova|MC Monaco|MN Mongolia|ME Montenegro|MS Montserrat|MA Morocco
MZ Mozambique|MM Myanmar|MM Burma|NA Namibia|NR Nauru|NP Nepal|NL Netherlands|NL Holland
NC New Caledonia|NZ New Zealand|NI Nicaragua|NE Niger|NG Nigeria|NU Niue|NF Norfolk Island
MK North Macedonia|MK Macedonia|MP Northern Mariana Islands|NO Norway|OM Oman|PK Pakistan
PW Palau|PS Palestine|PA Panama|PG Papua New Guinea|PY Paraguay|PE Peru|PH Philippines
PN Pitcairn|PL Poland|PT Portugal|PR Puerto Rico|QA Qatar|RE Reunion|RO Romania|RU Russia
RU Russian Federation|RW Rwanda|BL Saint Barthelemy|SH Saint Helena|KN Saint Kitts and Nevis
LC Saint Lucia|MF Saint Martin|PM Saint Pierre and Miquelon
VC Saint Vincent and the Grenadines|WS Samoa|SM San Marino|ST Sao Tome and Principe
SA Saudi Arabia|SN Senegal|RS Serbia|SC Seychelles|SL Sierra Leone|SG Singapore
SX Sint Maarten|SK Slovakia|SI Slovenia|SB Solomon Islands|SO Somalia|ZA South Africa
GS South Georgia and the South Sandwich Islands|SS South Sudan|ES Spain|LK Sri Lanka|SD Sudan
SR Suriname|SJ Svalbard and Jan Mayen|SE Sweden|CH Switzerland|SY Syria|TW Taiwan
TJ Tajikistan|TZ Tanzania|TH Thailand|TL Timor-Leste|TL East Timor|TG Togo|TK Tokelau|TO Tonga
TT Trinidad and Tobago|TN Tunisia|TR Turkey|TR Turkiye|TM Turkmenistan
TC Turks and Caicos Islands|TV Tuvalu|UG Uganda|UA Ukraine|AE United Arab Emirates|AE UAE
AE U.A.E.|GB United Kingdom|GB UK|GB U.K.|GB Great Britain|GB England|GB Scotland|GB Wales
GB Northern Ireland|US United States|US USA|US U.S.A.|US United States of America|US US
UM United States Minor Outlying Islands|UY Uruguay|UZ Uzbekistan|VU Vanuatu|VE Venezuela
VN Vietnam|VN Viet Nam|VG British Virgin Islands|VI US Virgin Islands|WF Wallis and Futuna
EH Western Sahara|YE Yemen|ZM Zambia|ZW Zimbabwe
"""
COUNTRIES: dict[str, str] = {
    entry[3:].strip().casefold(): entry[:2]
    for entry in _ISO_COUNTRIES.replace("\n", "|").split("|")
    if entry.strip()
}
ISO_CODES = frozenset(COUNTRIES.values())


def state_name(text: str | None) -> str | None:
    """A full state name for a state name (any case) or a two-letter code, else None."""
    if not text:
        return None
    return STATE_NAMES.get(text.casefold()) or STATE_CODES.get(
        text.upper() if len(text) == 2 else ""
    )


def country_code(text: str | None) -> str | None:
    """ISO alpha-2 for an English country name or an alpha-2 code, else None."""
    if not text:
        return None
    if len(text) == 2 and text.isalpha() and text.upper() in ISO_CODES:
        return text.upper()
    return COUNTRIES.get(text.casefold())


def iso_country(text: str | None) -> str | None:
    """A country field that should already be ISO alpha-2: any two letters, upper-cased
    (as given, FORMATS 2.6), or an English name; anything else is None."""
    if text and len(text) == 2 and text.isascii() and text.isalpha():
        return text.upper()
    return country_code(text)


class Place(NamedTuple):
    city: str | None = None
    state: str | None = None
    pincode: str | None = None
    country: str | None = None


_CITY_PIN = re.compile(r"(.*?)\s*(?:-|–|\s)\s*(\d{6})")


def split_city_pin(text: str) -> tuple[str | None, str | None]:
    """``Kochi - 682016`` → (``Kochi``, ``682016``); ``Kochi`` → (``Kochi``, None)."""
    if match := _CITY_PIN.fullmatch(text):
        return match[1] or None, match[2]
    return text or None, None


def parse_location(line: str, *, abroad: bool = False) -> Place:
    """A location line of an enquiry (FORMATS 3.4).

    ``City, State``, ``City - PIN, State``, ``City, Country`` and ``City, Region, Country``.
    ``abroad`` (an export enquiry) makes an ambiguous last element such as ``UK`` a
    country rather than a state code. Domestic lines get no country here: the caller
    knows that an IndiaMART domestic mail means ``IN``.
    """
    parts = [part.strip() for part in line.split(",") if part.strip()][:8]
    if not parts:
        return Place()
    last = parts[-1]
    country = country_code(last) if abroad or len(last) != 2 else None
    state = None if country else state_name(last)
    if country is None and state is None and len(last) == 2:
        country = country_code(last)
    if country == "IN" and len(parts) > 1:
        inner = parse_location(", ".join(parts[:-1]))
        return inner._replace(country="IN")
    if country:
        if len(parts) == 1:
            return Place(country=country)
        city, pincode = split_city_pin(parts[0])
        return Place(city, ", ".join(parts[1:-1]) or None, pincode, country)
    if len(parts) == 1:
        city, pincode = split_city_pin(last)
        return Place(city=city, pincode=pincode)
    city, pincode = split_city_pin(parts[-2])
    return Place(city, state or last, pincode)


def ends_with_state(line: str) -> bool:
    """Whether a comma-separated line ends with a state code or name (BuyLead identity)."""
    head, sep, last = line.rpartition(",")
    return bool(sep and head.strip()) and state_name(last.strip()) is not None
