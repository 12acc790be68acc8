"""Fixtures for the brain tests: the fake OpenAI-compatible server and a sample knowledge text."""

from __future__ import annotations

import pytest
from fake_openai import fake_openai  # noqa: F401  (registers the fixture for this directory)

# A small shop's knowledge text, as a shop owner would write it (headings, a list, key: value).
SHOP_KNOWLEDGE = """\
Acme Bikes is a family-run bicycle shop in Springfield. We sell city bikes, e-bikes and \
children's bikes.

Opening hours
We are open Monday to Friday from 9 am to 6 pm, and on Saturday from 10 am to 4 pm.
We are closed on Sundays and public holidays.

Returns
You can return any unused item within 30 days for a full refund, as long as you have the receipt.
Sale items can be exchanged but not refunded.

Contact
Our address is 42 Elm Street, Springfield, next to the central station.
You can call us on 555 0142, or email hello@acmebikes.example.

Repairs
- We repair all kinds of bikes, including e-bikes.
- A basic service costs 45 dollars and usually takes two days.
- Parking: there is free parking behind the shop.
"""


@pytest.fixture
def shop_knowledge() -> str:
    return SHOP_KNOWLEDGE
