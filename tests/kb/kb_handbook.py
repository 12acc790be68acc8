"""A synthetic company handbook (20 Markdown pages) and 30 questions about it, made at test time.

The pages are rendered from the policy data below with varied Markdown layout (title, intro,
``##``/``###`` sections, bullet lists, bold lead-ins, a table), like real wiki pages. The facts
are distinct per section (numbers, names, deadlines) and several words recur across pages
("days", "laptop", "report", "approval", "euros") so that keyword overlap alone is not enough.
Questions are phrased the way an employee would ask, not copied from the headings.

Also used by ``bench/kb.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

COMPANY = "Northwind Analytics"
CHARACTER = "northwind-hr"  # the character whose knowledge base holds the handbook


@dataclass(frozen=True)
class Page:
    document_id: str
    source: str
    text: str


@dataclass(frozen=True)
class Question:
    text: str
    document_id: str
    section: str  # the heading of the section holding the answer
    fact: str  # a string the answer passage contains


# (document id, title, intro, [(section, [paragraph or list item ("- ..."), ...]), ...])
_POLICIES: list[tuple[str, str, str, list[tuple[str, list[str]]]]] = [
    ("leave", "Leave policy", "This page explains the kinds of leave you can take.", [
        ("Annual leave", [
            "Full-time employees get 28 days of paid annual leave per calendar year, on top of "
            "public holidays. Part-time employees get a pro-rata share.",
            "Up to 5 unused days can be carried over into the next year, but they must be "
            "taken by 31 March or they are lost.",
        ]),
        ("Sick leave", [
            "If you are ill, tell your manager before 10:00 on the first day.",
            "You can self-certify for up to three days. From the fourth day of illness you need "
            "a doctor's certificate, uploaded to PeoplePortal.",
        ]),
        ("Parental leave", [
            "The primary caregiver of a newborn or newly adopted child receives 20 weeks of "
            "leave at full pay. The second parent receives 6 weeks at full pay.",
            "Let HR know at least 8 weeks before you want your leave to start.",
        ]),
        ("Bereavement leave", [
            "When a close family member dies you can take up to 5 days of paid compassionate "
            "leave. Speak to your manager; no paperwork is needed.",
        ]),
        ("Sabbaticals", [
            "After 4 years of service you can apply for an unpaid sabbatical of up to 3 months. "
            "Apply 6 months in advance.",
        ]),
    ]),
    ("expenses", "Expenses", "How to spend company money and get your own money back.", [
        ("Submitting a claim", [
            "Submit expense claims in Ledgerly within 60 days of the purchase, with a photo of "
            "every receipt. Claims older than 60 days are not paid.",
        ]),
        ("Meals", [
            "- The daily meal allowance on business trips is 55 euros.",
            "- Alcohol is never reimbursed.",
            "- Client dinners need the approval of your manager before the dinner.",
        ]),
        ("Approval limits", [
            "Any single purchase above 500 euros must be approved by a director in Ledgerly "
            "before you buy.",
        ]),
        ("When you get reimbursed", [
            "Approved claims submitted by the 20th of a month are paid with that month's "
            "salary. Later claims are paid the month after.",
        ]),
        ("Company credit cards", [
            "Team leads can request a company credit card with a monthly limit of 3,000 euros. "
            "Personal purchases on it are a disciplinary matter.",
        ]),
    ]),
    ("travel", "Business travel", "Rules for trips you take for work.", [
        ("Booking trips", [
            "Book all flights, trains and hotels through the TravelDesk portal, at least "
            "14 days before departure where possible.",
        ]),
        ("Flights", [
            "Fly economy class for flights under 6 hours. For longer flights you may book "
            "premium economy; business class needs the CFO's approval.",
        ]),
        ("Hotels", [
            "The hotel limit is 180 euros per night including breakfast. In London, Paris and "
            "New York the limit is 250 euros per night.",
        ]),
        ("Trains", [
            "Trips under 600 km should be made by train, not by plane. First class is allowed "
            "for train journeys longer than 3 hours.",
        ]),
        ("Emergencies while travelling", [
            "Our travel insurer runs an emergency line around the clock: +44 20 7946 0321. "
            "Call it if you are injured, lose your passport or are stranded abroad.",
        ]),
    ]),
    ("security", "Information security", "Everyone is responsible for keeping our data safe.", [
        ("Passwords", [
            "Passwords must be at least 14 characters long and unique for every system. Store "
            "them in the KeyKeeper password manager.",
            "You do not need to change passwords regularly, only when one may have leaked.",
        ]),
        ("Two-factor authentication", [
            "Two-factor authentication is mandatory for email, Slack and the VPN. "
            "Administrators must use a hardware security key.",
        ]),
        ("Phishing", [
            "If an email looks suspicious, do not click any link. Use the Report Phish button "
            "in Outlook, which sends it to the security team for analysis.",
        ]),
        ("Lost or stolen devices", [
            "Report a lost or stolen laptop or phone to the IT helpdesk within one hour, so "
            "the device can be locked and wiped remotely.",
        ]),
        ("Clean desk", [
            "Lock your screen whenever you leave your desk and put printed confidential "
            "documents in the locked shredding bins.",
        ]),
    ]),
    ("it-support", "IT support", "Getting help with hardware, software and accounts.", [
        ("Helpdesk", [
            "The IT helpdesk is reachable on extension 4357 and at help@northwind.example, "
            "Monday to Friday from 7:30 to 19:00.",
        ]),
        ("Laptops", [
            "Every employee gets a laptop, replaced every three years. You can choose between "
            "a MacBook Pro 14 and a ThinkPad X1 Carbon.",
        ]),
        ("Software requests", [
            "Request new software in the IT portal. Licences are approved within 2 working "
            "days; free tools from the approved list can be installed straight away.",
        ]),
        ("VPN", [
            "Connect through the NorthLink VPN whenever you work on a public network, such as "
            "in a cafe, at a hotel or at an airport.",
        ]),
        ("Printing", [
            "Printers on the 2nd and 4th floors release your print job when you tap your badge.",
        ]),
    ]),
    ("benefits", "Benefits", f"What {COMPANY} offers on top of your salary.", [
        ("Health insurance", [
            "Private health insurance starts on your first day. The company pays 80 percent of "
            "the premium, for you and your family.",
        ]),
        ("Pension", [
            "The company matches your pension contributions up to 6% of your gross salary. You "
            "can change your contribution once a quarter.",
        ]),
        ("Wellness allowance", [
            "Each employee has a wellness allowance of 600 euros per year for sport and "
            "wellbeing, such as a gym membership, yoga classes or running shoes.",
        ]),
        ("Bike leasing", [
            "You can lease up to two bicycles or e-bikes through salary sacrifice with our "
            "partner PedalPlus. The lease runs for 36 months.",
        ]),
        ("Employee assistance", [
            "The employee assistance programme offers free, confidential counselling 24 hours "
            "a day, with up to 6 sessions per topic.",
        ]),
    ]),
    ("onboarding", "Onboarding", "Your first weeks at the company.", [
        ("Your first day", [
            "Come to the reception on the ground floor at 9:30. Bring an identity document; we "
            "take your badge photo there.",
        ]),
        ("Buddy programme", [
            "Every newcomer is paired with a buddy from another team for the first 90 days.",
        ]),
        ("Probation", [
            "The probation period lasts six months, with review meetings after three months "
            "and at the end.",
        ]),
        ("Equipment", [
            "Your laptop is delivered to your home on the Friday before your start date.",
        ]),
        ("Mandatory training", [
            "Complete the security awareness course and the code of conduct course within your "
            "first two weeks.",
        ]),
    ]),
    ("remote-work", "Remote and hybrid work", "Where you can work from.", [
        ("Hybrid working", [
            "Teams work from the office at least two days a week. Tuesday and Thursday are "
            "the anchor days when everyone is in.",
        ]),
        ("Working from abroad", [
            "You can work from another country for up to 20 working days per year, with the "
            "approval of HR and your manager, so tax and insurance rules are respected.",
        ]),
        ("Home office", [
            "New employees get a one-time home office allowance of 400 euros for a desk, chair "
            "or monitor.",
        ]),
        ("Core hours", [
            "Core hours are 10:00 to 15:00, when everyone should be available for meetings.",
        ]),
    ]),
    ("performance", "Performance and growth", "How we review performance and pay.", [
        ("Review cycle", [
            "Performance reviews happen twice a year, in April and in October, using a "
            "five-point rating scale.",
        ]),
        ("Salary review", [
            "Salaries are reviewed once a year; changes take effect on 1 January.",
        ]),
        ("Promotions", [
            "Managers nominate people for promotion; a calibration committee decides in the "
            "October cycle.",
        ]),
        ("Goals", ["Each team sets OKRs every quarter and reviews them in the last week."]),
    ]),
    ("payroll", "Payroll", "Salary payments and payslips.", [
        ("Pay day", [
            "Salaries are paid on the last working day of each month.",
        ]),
        ("Payslips", [
            "Payslips are published in PeoplePortal two days before pay day.",
        ]),
        ("Overtime", [
            "Hourly staff are paid 150% for overtime. Salaried staff take time off in lieu "
            "within three months.",
        ]),
        ("Annual bonus", [
            "The annual bonus depends on company results and your rating, and is paid out with "
            "the March salary.",
        ]),
        ("Changing bank details", [
            "Change your bank account in PeoplePortal by the 15th for it to apply to that "
            "month's salary.",
        ]),
    ]),
    ("code-of-conduct", "Code of conduct", "How we behave with each other and with partners.", [
        ("Gifts and hospitality", [
            "You may accept gifts from customers or suppliers worth up to 50 euros. Anything "
            "more valuable must be declined or registered with Compliance.",
        ]),
        ("Conflicts of interest", [
            "Declare any side job, investment or relationship that could conflict with your "
            "work within 30 days in the compliance register.",
        ]),
        ("Speak up", [
            "You can report misconduct anonymously through ClearLine, an external "
            "whistleblowing service available online and by phone. Retaliation is forbidden.",
        ]),
        ("Respect at work", [
            "Harassment and discrimination are never tolerated. Talk to HR or any manager.",
        ]),
    ]),
    ("offices", "Offices and facilities", "Practical information about our Berlin office.", [
        ("Address and opening hours", [
            "The office is at Lindenstrasse 12, 10969 Berlin. It is open from 6:00 to 22:00; "
            "after 19:00 you need your badge to enter.",
        ]),
        ("Parking", [
            "There are 12 parking spaces in the underground garage, bookable in the Desk app. "
            "Four of them have electric car chargers.",
        ]),
        ("Canteen", [
            "The canteen on the 1st floor serves lunch from 11:30 to 14:00; a main dish costs "
            "4.50 euros thanks to the company subsidy.",
        ]),
        ("Dogs in the office", [
            "Dogs are welcome on the 3rd floor only, if they are calm and house-trained.",
        ]),
    ]),
    ("health-and-safety", "Health and safety", "Keeping everyone safe at work.", [
        ("First aid", [
            "Trained first aiders wear a green badge; their names are posted next to the lifts.",
        ]),
        ("Fire and evacuation", [
            "When the fire alarm sounds, leave by the nearest stairs and go to the assembly "
            "point in the park across the street. We hold an evacuation drill twice a year.",
        ]),
        ("Accidents", [
            "Report any accident or near miss within 24 hours using the incident form.",
        ]),
        ("Ergonomics", [
            "You can ask for a workstation assessment and a standing desk at any time.",
        ]),
    ]),
    ("learning", "Learning and development", "We invest in your growth.", [
        ("Training budget", [
            "Every employee has a personal training budget of 1,500 euros per year for "
            "courses, books and certifications.",
        ]),
        ("Conferences", [
            "You can attend one conference per year. Submit the request six weeks ahead.",
        ]),
        ("Language classes", [
            "German and English lessons are free, twice a week during working hours.",
        ]),
        ("Study leave", [
            "You get up to 5 paid days per year to prepare for and take exams.",
        ]),
    ]),
    ("data-protection", "Data protection", "How we handle personal data under the GDPR.", [
        ("Data protection officer", [
            "Our data protection officer is reachable at dpo@northwind.example.",
        ]),
        ("Data breaches", [
            "Report a suspected data breach to the data protection officer within 24 hours. "
            "The authority must be notified within 72 hours.",
        ]),
        ("Retention", [
            "Application documents of rejected candidates are deleted after six months.",
        ]),
        ("Customer data", [
            "Never send customer data to a personal email account; use encrypted storage only.",
        ]),
    ]),
    ("recruiting", "Recruiting and referrals", "Helping us hire great people.", [
        ("Employee referrals", [
            "If someone you recommend is hired, you receive a referral bonus of 2,000 euros "
            "once they pass their probation.",
        ]),
        ("Interview process", [
            "Candidates go through four stages: screening call, skills interview, case study, "
            "and a meeting with the team.",
        ]),
        ("Internal moves", [
            "You can apply for an internal position after 12 months in your current role.",
        ]),
    ]),
    ("communication", "Internal communication", "How we keep each other informed.", [
        ("Slack", [
            "Answer direct messages within one working day. Use threads in busy channels.",
        ]),
        ("All-hands meeting", [
            "The whole company meets on the first Monday of every month at 16:00.",
        ]),
        ("Out of office", [
            "Set an out-of-office reply and a Slack status when you are away for more than a "
            "day.",
        ]),
    ]),
    ("holidays", "Public holidays and closures", "Days when the office is closed.", [
        ("Year-end closure", [
            "The office closes from 24 December to 1 January. These days do not count against "
            "your annual leave.",
        ]),
        ("Floating holiday", [
            "Everyone has one floating holiday a year to use for a cultural or religious "
            "celebration of their choice.",
        ]),
        ("Public holidays", [
            "We follow the public holidays of the state where your contract is based.",
        ]),
    ]),
    ("offboarding", "Leaving the company", "What happens when you resign or your contract ends.", [
        ("Notice period", [
            "After probation the notice period is three months to the end of a month, for both "
            "sides. During probation it is two weeks.",
        ]),
        ("Returning equipment", [
            "Return your laptop, badge and other equipment within 5 working days after your "
            "last day; we send you a prepaid courier box.",
        ]),
        ("Exit interview", [
            "HR invites you to an optional exit interview in your last week.",
        ]),
        ("References", [
            "You receive a written reference letter within two weeks of leaving.",
        ]),
    ]),
    ("sustainability", "Sustainability", "Our commitments to reduce our footprint.", [
        ("Commuting", [
            "The company pays for a public transport season ticket for everyone who wants one.",
        ]),
        ("Recycling", [
            "Separate paper, plastic and organic waste in the kitchen bins on every floor.",
        ]),
        ("Carbon reporting", [
            "We publish our carbon footprint every year in June.",
        ]),
    ]),
]  # fmt: skip

QUESTIONS: list[Question] = [
    Question("How much time off do I get when I have a baby?", "leave", "Parental leave",
             "20 weeks"),
    Question("Can I move vacation days I didn't use into next year?", "leave", "Annual leave",
             "carried over"),
    Question("When do I need a note from the doctor if I'm off sick?", "leave", "Sick leave",
             "fourth day"),
    Question("What's the most I can pay for a hotel room per night?", "travel", "Hotels",
             "180 euros"),
    Question("Am I allowed to fly premium economy?", "travel", "Flights", "premium economy"),
    Question("Who do I call if I lose my passport on a business trip?", "travel",
             "Emergencies while travelling", "+44 20 7946 0321"),
    Question("How long does my password need to be?", "security", "Passwords", "14 characters"),
    Question("I got a weird email asking me to log in, what should I do with it?", "security",
             "Phishing", "Report Phish"),
    Question("I left my work laptop on the train, who do I tell?", "security",
             "Lost or stolen devices", "within one hour"),
    Question("How often do we get a new computer?", "it-support", "Laptops", "three years"),
    Question("When can I reach the helpdesk?", "it-support", "Helpdesk", "7:30"),
    Question("Do I have to use the VPN when I'm working from a coffee shop?", "it-support",
             "VPN", "public network"),
    Question("How much does the company put into my retirement savings?", "benefits", "Pension",
             "6%"),
    Question("Will the company pay for my gym?", "benefits", "Wellness allowance", "600 euros"),
    Question("Can I get an e-bike through work?", "benefits", "Bike leasing", "PedalPlus"),
    Question("What time should I arrive on my first day?", "onboarding", "Your first day",
             "9:30"),
    Question("How long is the trial period for new hires?", "onboarding", "Probation",
             "six months"),
    Question("How many days a week do I need to be in the office?", "remote-work",
             "Hybrid working", "two days"),
    Question("Could I work from Spain for a few weeks?", "remote-work", "Working from abroad",
             "20 working days"),
    Question("When do we get our salary?", "payroll", "Pay day", "last working day"),
    Question("When is the yearly bonus paid?", "payroll", "Annual bonus", "March"),
    Question("Can I accept a bottle of wine from a supplier?", "code-of-conduct",
             "Gifts and hospitality", "50 euros"),
    Question("How can I report wrongdoing without giving my name?", "code-of-conduct",
             "Speak up", "ClearLine"),
    Question("Where do we gather if there's a fire?", "health-and-safety",
             "Fire and evacuation", "assembly point"),
    Question("How much money can I spend on courses every year?", "learning", "Training budget",
             "1,500 euros"),
    Question("How fast do I have to report a data leak?", "data-protection", "Data breaches",
             "24 hours"),
    Question("Do I get anything if a friend I recommended gets hired?", "recruiting",
             "Employee referrals", "2,000 euros"),
    Question("How much notice do I have to give if I quit?", "offboarding", "Notice period",
             "three months"),
    Question("Is the office closed between Christmas and New Year?", "holidays",
             "Year-end closure", "24 December"),
    Question("Where can I park my car at the office?", "offices", "Parking", "12 parking spaces"),
]  # fmt: skip

# Questions the handbook cannot answer.
OFF_TOPIC = [
    "What's the capital of Australia?",
    "Who won the football world cup in 2014?",
    "Can you give me a recipe for pizza dough?",
    "How far away is the moon?",
    "What's the weather like tomorrow?",
    "Who is the CEO of Apple?",
]
# Unanswerable too, but sharing a word with a passage ("language" classes, the "Berlin" office):
# the known weak spot of a similarity threshold. Reported by bench/kb.py, not asserted.
NEAR_MISSES = [
    "What is the best programming language for beginners?",
    "What year did the Berlin wall fall?",
]


def _render(index: int, title: str, intro: str, sections: list[tuple[str, list[str]]]) -> str:
    """One page as Markdown; the layout varies with ``index`` like pages written by different
    people (``##`` or ``###`` sections, bold lead-ins, a summary table)."""
    lines = [f"# {title}", "", f"_{COMPANY} employee handbook._ {intro}", ""]
    level = "##" if index % 3 else "###"
    if index % 3 == 0:
        lines += ["## Details", ""]
    for number, (section, paragraphs) in enumerate(sections):
        lines += [f"{level} {section}", ""]
        for paragraph in paragraphs:
            if index % 4 == 1 and number == 0 and not paragraph.startswith("- "):
                paragraph = f"**In short:** {paragraph}"
            lines.append(paragraph)
            lines.append("" if not paragraph.startswith("- ") else "")
    if index % 5 == 2:
        lines += ["## Contacts", "", "| Topic | Contact |", "| --- | --- |",
                  f"| {title} | hr@northwind.example |", ""]  # fmt: skip
    lines += ["", f"Last reviewed by HR. Questions about {title.lower()}? Ask in #ask-hr."]
    return "\n".join(lines) + "\n"


def handbook_pages() -> list[Page]:
    """The 20 pages of the handbook."""
    return [
        Page(document_id, f"{document_id}.md", _render(index, title, intro, sections))
        for index, (document_id, title, intro, sections) in enumerate(_POLICIES)
    ]
