"""Two more generated handbooks of different shapes, with paraphrased questions, for retrieval
that must hold on documents it was not tuned on (``tests/kb/kb_handbook.py`` is the first one).

- ``SHOP``: a small bike shop's website FAQ: six short pages, sections of one or two sentences,
  some headings phrased as questions, a short "Holidays" section that shares everyday words
  ("open", "shop", "closed") with many questions, and an "About us" page;
- ``LIBRARY``: a city library's policy manual: four long pages whose sections run to several
  paragraphs, the answer buried mid-section, with words recurring across sections ("card",
  "fee", "days", "members").

Questions are asked the way a customer would ask them, not copied from the headings. Also used
by ``bench/brain.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from kb_handbook import Page, Question

__all__ = ["HANDBOOKS", "LIBRARY", "SHOP", "Handbook"]


@dataclass(frozen=True)
class Handbook:
    name: str
    character: str
    pages: tuple[Page, ...]
    questions: tuple[Question, ...]


def _render(title: str, intro: str, sections: list[tuple[str, list[str]]], level: str) -> str:
    lines = [f"# {title}", "", intro, ""]
    for heading, paragraphs in sections:
        lines += [f"{level} {heading}", ""]
        for paragraph in paragraphs:
            lines += [paragraph, ""]
    return "\n".join(lines)


_SHOP_PAGES = [
    ("hours", "Opening hours", "When you can visit Spoke & Chain.", [
        ("Weekdays", ["We are open Monday to Friday from 9:00 to 18:30."]),
        ("Saturday", ["On Saturdays the shop opens at 10:00 and closes at 16:00."]),
        ("Sunday", ["We are closed on Sundays."]),
        ("Holidays", ["The shop is closed on public holidays and from 24 December to "
                      "2 January."]),
    ]),
    ("about", "About us", "Spoke & Chain is a family-run bike shop.", [
        ("Our story", ["Spoke & Chain was founded in 1987 by Greta Lindqvist, a former "
                       "racing cyclist, in her garage."]),
        ("Where to find us", ["You will find the shop at 14 Harbour Street in Portsmouth, "
                              "opposite the ferry terminal."]),
        ("Our team", ["Six mechanics work in our workshop, all trained and certified."]),
    ]),
    ("repairs", "Workshop and repairs", "Our workshop fixes every kind of bicycle.", [
        ("Do I need an appointment?", ["Book a service online or by phone; small repairs "
                                       "such as a flat tyre are done while you wait."]),
        ("Service prices", ["A basic service costs 45 pounds and a full service 95 pounds, "
                            "parts not included."]),
        ("E-bikes", ["We repair e-bikes from Bosch, Shimano and Brose, including motor "
                     "and battery diagnostics."]),
        ("How long does a repair take?", ["Most repairs are ready within three working "
                                          "days."]),
    ]),
    ("buying", "Buying a bike", "Help choosing and paying for your bike.", [
        ("Test rides", ["You can test ride any bike in stock for up to 30 minutes; bring "
                        "a photo ID."]),
        ("Payment", ["We accept cash, all major cards and Apple Pay. Interest-free finance "
                     "is available on bikes over 500 pounds."]),
        ("Cycle to Work scheme", ["We take part in the Cycle to Work scheme, so your "
                                  "employer can buy the bike tax-free."]),
        ("Trade-ins", ["Bring your old bike and we will offer a trade-in value towards a "
                       "new one."]),
    ]),
    ("returns", "Returns and warranty", "If something is not right.", [
        ("Returns", ["Unused items can be returned within 28 days with the receipt for a "
                     "full refund."]),
        ("Warranty", ["New bikes come with a lifetime warranty on the frame and two years "
                      "on components."]),
        ("Faulty parts", ["If a part fails, bring it back and we replace it free of charge "
                          "during the warranty period."]),
    ]),
    ("rentals", "Bike hire", "Explore the coast on one of our hire bikes.", [
        ("Prices", ["Hiring a city bike costs 20 pounds per day; an e-bike costs "
                    "35 pounds per day."]),
        ("What is included?", ["Every hire includes a helmet, a lock and a puncture "
                               "repair kit."]),
        ("Deposit", ["We take a deposit of 100 pounds on a card, returned when the bike "
                     "comes back."]),
    ]),
]  # fmt: skip

_SHOP_QUESTIONS = [
    ("When do you open on Saturday?", "hours", "Saturday", "opens at 10:00"),
    ("Are you open on a Sunday?", "hours", "Sunday", "closed on Sundays"),
    ("What time do you close during the week?", "hours", "Weekdays", "18:30"),
    ("Are you open between Christmas and New Year?", "hours", "Holidays", "24 December"),
    ("Where is the shop?", "about", "Where to find us", "14 Harbour Street"),
    ("Who founded the shop?", "about", "Our story", "Greta Lindqvist"),
    ("How old is the business?", "about", "Our story", "1987"),
    ("How many mechanics do you have?", "about", "Our team", "Six mechanics"),
    (
        "Can you fix my flat tyre right away?",
        "repairs",
        "Do I need an appointment?",
        "while you wait",
    ),
    ("How much does a full service cost?", "repairs", "Service prices", "95 pounds"),
    ("Do you work on electric bikes?", "repairs", "E-bikes", "Bosch"),
    (
        "How long will my bike be in the workshop?",
        "repairs",
        "How long does a repair take?",
        "three working days",
    ),
    ("Can I try a bike before I buy it?", "buying", "Test rides", "30 minutes"),
    ("Can I pay with my phone?", "buying", "Payment", "Apple Pay"),
    ("Do you offer finance?", "buying", "Payment", "Interest-free finance"),
    ("Can my employer pay for the bike?", "buying", "Cycle to Work scheme", "tax-free"),
    ("Will you take my old bike in part exchange?", "buying", "Trade-ins", "trade-in value"),
    ("Can I get my money back if I change my mind?", "returns", "Returns", "28 days"),
    ("How long is the frame guaranteed?", "returns", "Warranty", "lifetime warranty"),
    ("A part broke after a month, what now?", "returns", "Faulty parts", "free of charge"),
    ("How much is it to rent an e-bike for a day?", "rentals", "Prices", "35 pounds"),
    ("Do I get a helmet with a rental bike?", "rentals", "What is included?", "helmet"),
    ("Do you need a deposit for hire bikes?", "rentals", "Deposit", "100 pounds"),
    ("How much is a basic service?", "repairs", "Service prices", "45 pounds"),
]

_LIBRARY_PAGES = [
    ("membership", "Membership and library cards", "Who can join Riverside City Library and "
     "how membership works. Membership is free for everyone who lives, works or studies in "
     "the city.", [
        ("Joining the library", [
            "You can join at any branch or online. To join in person, bring a photo ID and a "
            "proof of address dated within the last three months, such as a utility bill or a "
            "bank statement. Online members receive a temporary digital card at once and can "
            "collect their plastic card at any branch within 30 days.",
            "Children under 16 can join with the signature of a parent or guardian, who "
            "accepts responsibility for items borrowed on the child's card.",
            "Your membership stays active as long as you use your card at least once every "
            "three years. We write to you before an inactive membership is closed, and your "
            "personal data is deleted three months after closure unless you still have items "
            "on loan or unpaid charges.",
        ]),
        ("Lost or damaged cards", [
            "Please report a lost card as soon as possible, by phone or at any desk, so that "
            "nobody else can borrow items on it. The first replacement card is free; further "
            "replacements cost 3 euros each. Items borrowed on a lost card before you report it "
            "remain your responsibility.",
            "Damaged cards that no longer scan at the self-service machines are replaced free "
            "of charge at any desk. If your name or address changes, tell us at the desk or "
            "update your details online so that notices reach you.",
        ]),
        ("Visitors from outside the city", [
            "People who live outside the city can become associate members for 25 euros a "
            "year. Associate members may borrow up to five items at a time and have the same "
            "access to the digital library as residents.",
            "Visitors staying in the city for a short time, such as students on exchange or "
            "seasonal workers, can ask for a free temporary membership of up to six months with "
            "a letter from their school or employer.",
        ]),
    ]),
    ("borrowing", "Borrowing and returning", "The rules for loans, renewals, reservations and "
     "fees. They apply at every branch.", [
        ("Loan periods and limits", [
            "Adult members may have up to 20 items on loan at the same time. Books and audio "
            "books are lent for three weeks, DVDs and video games for one week, and magazines "
            "for one week. New releases marked with a red sticker are lent for one week only.",
            "Children's cards have a limit of 10 items. Some items cannot be borrowed at all: "
            "reference books, local history archives and the newspapers of the day must be "
            "used in the library. Your receipt and your online account show the due date of "
            "every item.",
        ]),
        ("Renewals", [
            "Loans can be renewed up to three times, online, in the app or by phone, as long "
            "as no other member has reserved the item. Each renewal starts a new loan period "
            "from the day you renew.",
            "We send a reminder email three days before items are due, and items are renewed "
            "automatically once when nobody is waiting for them. Overdue items can still be "
            "renewed, but the late fees already due are not cancelled.",
        ]),
        ("Reservations", [
            "You can reserve any item in the catalogue, including items held at other "
            "branches. Reservations are free for children; adults pay 50 cents per reservation. "
            "We send an email or a text message when the item is ready, and keep it for you "
            "for seven days.",
        ]),
        ("Late fees", [
            "There are no late fees on children's items. For adult items the fee is 20 cents "
            "per item per day, up to a maximum of 6 euros per item. Members with more than "
            "10 euros of unpaid fees cannot borrow until the balance is paid.",
            "Items that are more than six weeks overdue are treated as lost, and the "
            "replacement cost of the item is added to your account. If you return the item "
            "later in good condition, the replacement cost is removed and only the late fee "
            "remains. Fees can be paid at any desk, at the self-service kiosks or online.",
        ]),
        ("Returning items", [
            "Items can be returned to any branch, at the desk or in the self-service return "
            "machines. Outside opening hours, use the return box next to the main entrance; "
            "items in the box are checked in on the next opening day without late fees for "
            "the closed days.",
        ]),
    ]),
    ("services", "Digital services and study spaces", "What the library offers besides books: "
     "computers, printing, study rooms, e-books and events.", [
        ("Computers and Wi-Fi", [
            "Free Wi-Fi is available in every branch without a password; you only accept the "
            "terms of use. Members can book a public computer for up to two hours a day, and "
            "sessions can be extended if nobody is waiting.",
            "Computers have word processing and spreadsheet software, a web browser and "
            "headphones on request. Files are deleted when you log out, so save your work on a "
            "USB stick or in your own cloud storage. Staff can help you get started, but "
            "cannot fill in forms for you.",
        ]),
        ("Printing and scanning", [
            "Black and white prints cost 10 cents per page and colour prints 50 cents per "
            "page. Scanning to a USB stick or to email is free. You pay at the self-service "
            "kiosk with your library card or a contactless bank card.",
        ]),
        ("Study rooms", [
            "Group study rooms for up to eight people can be booked up to two weeks in "
            "advance, for a maximum of three hours per booking. Silent study areas on the "
            "second floor of the Central branch cannot be booked and are first come, first "
            "served.",
        ]),
        ("E-books and streaming", [
            "With your library card you can borrow up to ten e-books and audio books at a "
            "time through the Libby app, and stream films on Kanopy, eight films per month.",
        ]),
    ]),
    ("conduct", "Visiting the library", "Our house rules, so that everyone can enjoy the "
     "library, and practical information about opening hours and access.", [
        ("Opening hours", [
            "The Central branch is open Monday to Friday from 8:00 to 21:00 and on weekends "
            "from 10:00 to 17:00. Neighbourhood branches open Tuesday to Saturday from 10:00 "
            "to 18:00. All branches close on public holidays.",
        ]),
        ("Food and drink", [
            "Covered drinks are allowed everywhere except near the rare books collection. "
            "Please eat only in the cafe on the ground floor of the Central branch, where "
            "you are also welcome to bring your own lunch.",
        ]),
        ("Accessibility", [
            "All branches have step-free access and accessible toilets. Hearing loops are "
            "installed at every service desk, and large-print and audio collections are kept "
            "on the ground floor. Assistance dogs are always welcome.",
            "Wheelchairs and reading magnifiers can be borrowed at the Central branch desk for "
            "use in the building. If you cannot visit, our home delivery service brings books "
            "to members who are housebound, once every three weeks.",
        ]),
        ("Children in the library", [
            "Children under eight must be accompanied by an adult at all times. Story time "
            "for toddlers takes place every Wednesday at 10:30 in the children's corner.",
        ]),
    ]),
]  # fmt: skip

_LIBRARY_QUESTIONS = [
    ("What do I need to bring to sign up?", "membership", "Joining the library", "photo ID"),
    ("Can my kid get a card?", "membership", "Joining the library", "Children under 16"),
    (
        "I lost my card, do I have to pay for a new one?",
        "membership",
        "Lost or damaged cards",
        "first replacement card is free",
    ),
    (
        "I live in another town, can I still join?",
        "membership",
        "Visitors from outside the city",
        "25 euros a year",
    ),
    (
        "How many books can I take out at once?",
        "borrowing",
        "Loan periods and limits",
        "up to 20 items",
    ),
    ("How long can I keep a DVD?", "borrowing", "Loan periods and limits", "one week"),
    ("Can I extend my loan?", "borrowing", "Renewals", "three times"),
    (
        "Does it cost anything to put a hold on a book?",
        "borrowing",
        "Reservations",
        "50 cents per reservation",
    ),
    ("How long do you keep a reserved book for me?", "borrowing", "Reservations", "seven days"),
    (
        "What happens if I bring a book back late?",
        "borrowing",
        "Late fees",
        "20 cents per item per day",
    ),
    ("Can I drop books off when you're closed?", "borrowing", "Returning items", "return box"),
    ("Is there internet?", "services", "Computers and Wi-Fi", "Free Wi-Fi"),
    ("How long can I use a computer?", "services", "Computers and Wi-Fi", "two hours a day"),
    ("How much is a colour copy?", "services", "Printing and scanning", "50 cents per page"),
    ("Can I scan documents?", "services", "Printing and scanning", "Scanning to a USB stick"),
    (
        "Can we book a room to work on a group project?",
        "services",
        "Study rooms",
        "up to eight people",
    ),
    (
        "Can I read e-books from the library on my tablet?",
        "services",
        "E-books and streaming",
        "Libby app",
    ),
    (
        "When is the main library open at the weekend?",
        "conduct",
        "Opening hours",
        "weekends from 10:00 to 17:00",
    ),
    (
        "Can I eat my sandwich in the reading room?",
        "conduct",
        "Food and drink",
        "eat only in the cafe",
    ),
    ("Is the building wheelchair accessible?", "conduct", "Accessibility", "step-free access"),
    ("Can I bring my guide dog?", "conduct", "Accessibility", "Assistance dogs"),
    (
        "Is there a story hour for little kids?",
        "conduct",
        "Children in the library",
        "every Wednesday at 10:30",
    ),
    (
        "Can I leave my seven-year-old alone in the library?",
        "conduct",
        "Children in the library",
        "Children under eight",
    ),
    ("How much do I owe if I don't pay my fines?", "borrowing", "Late fees", "10 euros"),
]


def _pages(source: str, specs: list, level: str) -> tuple[Page, ...]:  # type: ignore[type-arg]
    return tuple(
        Page(document_id, f"{document_id}.md", _render(title, intro, sections, level))
        for document_id, title, intro, sections in specs
    )


SHOP = Handbook(
    "shop FAQ (6 short pages)", "spoke-and-chain", _pages("shop", _SHOP_PAGES, "##"),
    tuple(Question(*q) for q in _SHOP_QUESTIONS),
)  # fmt: skip
LIBRARY = Handbook(
    "library policies (4 long pages)", "riverside-library",
    _pages("library", _LIBRARY_PAGES, "##"), tuple(Question(*q) for q in _LIBRARY_QUESTIONS),
)  # fmt: skip
HANDBOOKS = (SHOP, LIBRARY)
