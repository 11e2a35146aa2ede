#!/usr/bin/env python3
"""Regenerate the binary example documents in ``examples/docs/``.

Writes:
  * ``docs/expenses-policy.pdf`` (fpdf2, three pages, one section per page)
  * ``docs/leave-policy.docx``   (python-docx, Title + Heading 1/2 styles, one table)

The Markdown, HTML and plain-text examples in ``docs/`` are maintained by hand.

All text lives in this script, so the documents can be rebuilt with::

    pip install fpdf2 python-docx
    python examples/make_docs.py

The PDF needs a TrueType font that covers "€". By default DejaVu Sans from
Debian's ``fonts-dejavu-core`` package is used; override with the environment
variables ``EXAMPLES_PDF_FONT`` (regular) and ``EXAMPLES_PDF_FONT_BOLD`` (bold;
defaults to ``DejaVuSans-Bold.ttf`` next to the regular font, or to the regular
font itself when that file is missing).

Output is made as deterministic as the libraries allow: fixed creation and
modification dates, and fixed timestamps inside the DOCX zip container.
"""

from __future__ import annotations

import datetime as _dt
import io
import os
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOCS_DIR = HERE / "docs"

COMPANY = "Fernhollow Analytics Ltd."
DEFAULT_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
# Fixed timestamp used for document metadata so regenerated files are stable.
FIXED_DATE = _dt.datetime(2024, 1, 1, 0, 0, 0, tzinfo=_dt.UTC)

# --------------------------------------------------------------------------
# Expenses and Travel Policy (PDF). One list of blocks per page.
# Block kinds: "title", "subtitle", "h1", "h2", "p".
# --------------------------------------------------------------------------
PDF_TITLE = "Expenses and Travel Policy"

PDF_PAGES: list[list[tuple[str, str]]] = [
    # ---- Page 1: Meals and accommodation --------------------------------
    [
        ("title", "Expenses and Travel Policy"),
        ("subtitle", f"{COMPANY} \u2013 Harbour House, Bristol"),
        ("h1", "Purpose and Scope"),
        (
            "p",
            "This policy explains how employees of Fernhollow Analytics Ltd. incur, "
            "record and recover business expenses. It applies to all permanent and "
            "fixed-term employees, to contractors who have been authorised to claim "
            "expenses, and to anyone travelling on behalf of the company. The aim is "
            "to make sure that nobody is left out of pocket for legitimate business "
            "costs, while keeping spending proportionate, transparent and easy to audit.",
        ),
        (
            "p",
            "Employees are expected to spend company money as carefully as they would "
            "spend their own. Where a cheaper option is reasonably available and does "
            "not compromise safety or the purpose of the trip, it should be chosen.",
        ),
        ("h1", "Meals and Accommodation"),
        ("h2", "Meals"),
        (
            "p",
            "When working away from their usual place of work within the country, "
            "employees may claim reasonable costs for food and non-alcoholic drinks. "
            "The domestic meal allowance is \u20ac42 per day. The allowance is a ceiling "
            "rather than an entitlement: only the amount actually spent can be claimed, "
            "and any unspent allowance cannot be moved to another day. Alcohol is not "
            "reimbursed unless it forms part of an approved client hospitality event.",
        ),
        ("h2", "Accommodation"),
        (
            "p",
            "Overnight stays should be booked in clean, safe, mid-range hotels close to "
            "the place of business. Hotel stays are capped at \u20ac165 per night. If a "
            "higher rate is unavoidable, for example because a major event is taking "
            "place in the city, the traveller must obtain agreement from their manager "
            "before booking.",
        ),
        ("h2", "Receipts"),
        (
            "p",
            "Itemised receipts are required for any expense above \u20ac25. A card "
            "statement or payment confirmation on its own is not sufficient, because "
            "it does not show what was purchased. For smaller amounts a short written "
            "description of the purchase is acceptable. Lost receipts should be "
            "reported to the finance team as soon as possible, together with a signed "
            "note explaining the expense.",
        ),
    ],
    # ---- Page 2: Claims and approval -------------------------------------
    [
        ("h1", "Claims and Approval"),
        ("h2", "Submitting a Claim"),
        (
            "p",
            "Claims must be submitted within 30 days of the expense being incurred "
            "through the Ledgerly expense system. Each claim should state the business "
            "purpose, the cost centre to be charged and the people involved, and should "
            "include a clear photograph or scan of every receipt. Late claims may be "
            "refused, and repeated late submission will be raised with the employee's "
            "line manager.",
        ),
        ("h2", "Approval"),
        (
            "p",
            "Every claim is reviewed by the claimant's line manager before it is paid. "
            "Any single claim above \u20ac500 needs approval from the cost-centre manager, "
            "who confirms that the spending is covered by the relevant budget. Managers "
            "must not approve their own claims, and nobody may approve a claim from "
            "which they personally benefit. Approvers are responsible for checking that "
            "expenses are genuine, necessary and in line with this policy; approving a "
            "claim is not a formality.",
        ),
        ("h2", "Mileage"),
        (
            "p",
            "Employees who use their own vehicle for business journeys can claim a "
            "mileage allowance. Mileage for private cars is reimbursed at \u20ac0.31 per "
            "kilometre, which is intended to cover fuel, wear and insurance. Journeys "
            "between home and the usual place of work are treated as commuting and "
            "cannot be claimed. Drivers must hold a valid licence and insurance that "
            "covers business use, and should record the starting point, destination "
            "and purpose of each journey in the claim.",
        ),
        ("h2", "Payment and Checks"),
        (
            "p",
            "Approved claims are paid together with the next regular pay run. The "
            "finance team may ask for further information about any claim and carries "
            "out spot checks. Deliberately false or inflated claims are treated as a "
            "disciplinary matter and may be reported to the appropriate authorities.",
        ),
    ],
    # ---- Page 3: International travel ------------------------------------
    [
        ("h1", "International Travel"),
        ("h2", "Planning and Booking"),
        (
            "p",
            "All international travel must be approved in advance by the traveller's "
            "manager. Travel must be booked through the agency Wayfarer Corporate "
            "Travel, which holds the company's negotiated fares and keeps a record of "
            "where our travellers are in case of an emergency. Flights, trains and "
            "hotels booked directly with a provider will not normally be reimbursed.",
        ),
        ("h2", "Daily Allowance Abroad"),
        (
            "p",
            "The international per diem is \u20ac68 per day. It covers meals, local "
            "transport within the destination city and incidental costs such as "
            "laundry and tips. It replaces the domestic meal allowance while the "
            "employee is abroad and cannot be combined with it for the same day.",
        ),
        ("h2", "Class of Travel"),
        (
            "p",
            "Economy class is the standard for all flights. Business class is allowed "
            "only for flights longer than 9 hours, and such a booking must still be "
            "approved by the traveller's manager. Upgrades paid for personally or with "
            "loyalty points are at the traveller's own discretion.",
        ),
        ("h2", "Health, Safety and Insurance"),
        (
            "p",
            "Before travelling, employees should check official travel advice for "
            "their destination, make sure that their passport and any visas are valid, "
            "and carry the details of the company's travel insurance. Any incident, "
            "illness or security concern during a trip should be reported to the "
            "traveller's manager as soon as it is safe to do so.",
        ),
        ("h1", "Responsibilities"),
        (
            "p",
            "The finance team owns this policy and reviews it regularly. Managers are "
            "responsible for approving travel and claims fairly and consistently. "
            "Employees are responsible for reading this policy, keeping their receipts "
            "and asking the finance team whenever something is unclear.",
        ),
    ],
]

# --------------------------------------------------------------------------
# Leave Policy (DOCX). Block kinds: "title", "h1", "h2", "p", "table".
# --------------------------------------------------------------------------
DOCX_TITLE = "Leave Policy"

LEAVE_TABLE = [
    ("Leave type", "Entitlement"),
    ("Annual leave", "27 days per year (up to 5 days may be carried over)"),
    ("Parental leave", "18 weeks, fully paid"),
    ("Sick leave", "Doctor's note required after 3 consecutive days"),
    ("Bereavement leave", "4 days, paid"),
    ("Sabbatical", "Up to 3 months, unpaid, after 6 years of service"),
]

DOCX_BLOCKS: list[tuple[str, object]] = [
    ("title", "Leave Policy"),
    ("p", f"{COMPANY} \u2013 People Team"),
    ("h1", "Purpose and Scope"),
    (
        "p",
        "This policy sets out the types of leave available to employees of "
        "Fernhollow Analytics Ltd. and explains how leave is requested and approved. "
        "It applies to every employee of the company. Part-time employees receive "
        "the same types of leave, with entitlements calculated on a pro-rata basis "
        "from their contracted working pattern.",
    ),
    (
        "p",
        "Time away from work matters for health, for family life and for the "
        "quality of the work we do for our clients. Managers are expected to "
        "support their teams in taking the leave they are entitled to and to plan "
        "cover so that nobody feels unable to take a break.",
    ),
    ("h1", "Annual Leave"),
    ("h2", "Entitlement"),
    (
        "p",
        "Every full-time employee receives 27 days of paid annual leave per year, "
        "in addition to public holidays. Leave should be requested through the HR "
        "system and agreed with the employee's line manager before any travel is "
        "booked. Requests are normally approved on a first-come, first-served basis, "
        "taking into account the needs of the team and of our clients.",
    ),
    ("h2", "Carrying Over Unused Leave"),
    (
        "p",
        "We encourage everyone to take their full entitlement within the leave "
        "year. Up to 5 days of unused annual leave may be carried over into the "
        "next leave year. Carried-over days expire on 31 March and cannot be paid "
        "out or carried forward again. Any other unused leave is lost at the end of "
        "the leave year unless HR has agreed an exception in writing, for example "
        "after a long absence.",
    ),
    ("h1", "Parental Leave"),
    (
        "p",
        "Employees who become parents through birth, adoption or surrogacy are "
        "entitled to 18 weeks of fully paid parental leave. Parental leave can be "
        "taken as a single block or, by agreement with the line manager, in "
        "several shorter blocks. Employees should tell the People Team about their "
        "plans as early as they feel comfortable, so that cover can be arranged and "
        "the right paperwork completed. Keeping-in-touch days and a phased return "
        "to work can be agreed on request.",
    ),
    ("h1", "Sick Leave"),
    (
        "p",
        "If you are unwell and cannot work, tell your line manager as early as "
        "possible on the day, and keep them informed about when you expect to "
        "return. A doctor's note is required after 3 consecutive days of sickness. "
        "For shorter absences a self-certification form, completed on your return, "
        "is sufficient. After any period of sickness your manager will hold a short, "
        "supportive return-to-work conversation to check whether any adjustments "
        "would help.",
    ),
    ("h1", "Bereavement Leave"),
    (
        "p",
        "Employees who lose a close family member or dependant are entitled to 4 "
        "days of paid bereavement leave. The leave does not need to be taken in one "
        "block and can be used, for example, to attend a funeral at a later date. "
        "In particularly difficult circumstances managers may agree additional paid "
        "or unpaid time off with the People Team.",
    ),
    ("h1", "Sabbaticals"),
    (
        "p",
        "After 6 years of service an employee may take an unpaid sabbatical of up "
        "to 3 months. A sabbatical can be used for study, travel, volunteering or "
        "simply rest. Requests should be made in writing to the line manager and "
        "the People Team well in advance, and are considered in the light of "
        "business needs. Continuity of employment is preserved during a "
        "sabbatical, and the employee returns to the same or an equivalent role.",
    ),
    ("h1", "Summary of Entitlements"),
    (
        "p",
        "The table below summarises the entitlements described in this policy for "
        "a full-time employee.",
    ),
    ("table", LEAVE_TABLE),
    ("h1", "Responsibilities"),
    (
        "p",
        "The People Team owns this policy, answers questions about it and keeps "
        "leave records up to date. Line managers approve leave fairly and "
        "consistently and make sure that absence is recorded. Employees are "
        "responsible for requesting leave in good time and for reporting sickness "
        "promptly.",
    ),
]


# --------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------
def _font_paths() -> tuple[str, str]:
    regular = os.environ.get("EXAMPLES_PDF_FONT", DEFAULT_FONT)
    bold = os.environ.get("EXAMPLES_PDF_FONT_BOLD")
    if not bold:
        candidate = Path(regular).with_name("DejaVuSans-Bold.ttf")
        bold = str(candidate) if candidate.is_file() else regular
    for path in (regular, bold):
        if not Path(path).is_file():
            sys.exit(
                f"font not found: {path}\n"
                "Install Debian's fonts-dejavu-core or set EXAMPLES_PDF_FONT "
                "to a TrueType font that covers the euro sign."
            )
    return regular, bold


def build_pdf(out_path: Path) -> None:
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    regular, bold = _font_paths()

    class PolicyPDF(FPDF):
        def header(self) -> None:
            self.set_font("PolicyFont", "", 8)
            self.set_text_color(110, 110, 110)
            self.cell(
                0, 6, f"{COMPANY} | {PDF_TITLE}", new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="R"
            )
            self.set_text_color(0, 0, 0)
            self.ln(4)

    pdf = PolicyPDF(format="A4", unit="mm")
    pdf.set_margins(22, 18, 22)
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_font("PolicyFont", "", regular)
    pdf.add_font("PolicyFont", "B", bold)
    pdf.set_title(PDF_TITLE)
    pdf.set_author(COMPANY)
    pdf.set_subject("Company policy")
    pdf.set_creator("examples/make_docs.py")
    pdf.set_lang("en-GB")
    pdf.set_creation_date(FIXED_DATE)

    styles = {
        "title": ("B", 20, 10, 2),
        "subtitle": ("", 10, 6, 6),
        "h1": ("B", 14, 8, 3),
        "h2": ("B", 11.5, 6.5, 1),
        "p": ("", 10.5, 5.6, 3),
    }
    for page in PDF_PAGES:
        pdf.add_page()  # every section starts on its own page
        for kind, text in page:
            style, size, line_h, after = styles[kind]
            if kind in ("h1", "h2") and pdf.get_y() > 40:
                pdf.ln(2)
            pdf.set_font("PolicyFont", style, size)
            pdf.multi_cell(0, line_h, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(after)
    if pdf.page_no() != len(PDF_PAGES):
        sys.exit(f"PDF overflowed: {pdf.page_no()} pages instead of {len(PDF_PAGES)}")
    out_path.write_bytes(bytes(pdf.output()))


def _normalise_zip(data: bytes) -> bytes:
    """Rewrite a zip with fixed timestamps and attributes (stable bytes)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            fixed.create_system = 3
            dst.writestr(fixed, src.read(info.filename))
    return buf.getvalue()


def build_docx(out_path: Path) -> None:
    import docx
    from docx.shared import Pt

    document = docx.Document()
    for kind, content in DOCX_BLOCKS:
        if kind == "title":
            document.add_heading(content, level=0)  # "Title" style
        elif kind == "h1":
            document.add_heading(content, level=1)
        elif kind == "h2":
            document.add_heading(content, level=2)
        elif kind == "p":
            document.add_paragraph(content)
        elif kind == "table":
            rows = content
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            table.style = "Table Grid"
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    cell = table.cell(r, c)
                    cell.text = value
                    if r == 0:
                        for run in cell.paragraphs[0].runs:
                            run.bold = True
                            run.font.size = Pt(11)
        else:
            raise ValueError(kind)

    props = document.core_properties
    props.title = DOCX_TITLE
    props.author = COMPANY
    props.last_modified_by = COMPANY
    props.subject = "Company policy"
    props.comments = ""
    props.keywords = "leave, policy"
    props.revision = 1
    naive = FIXED_DATE.replace(tzinfo=None)
    props.created = naive
    props.modified = naive
    props.last_printed = naive

    buf = io.BytesIO()
    document.save(buf)
    out_path.write_bytes(_normalise_zip(buf.getvalue()))


def main() -> None:
    DOCS_DIR.mkdir(parents=True, exist_ok=True)
    pdf_path = DOCS_DIR / "expenses-policy.pdf"
    docx_path = DOCS_DIR / "leave-policy.docx"
    build_pdf(pdf_path)
    build_docx(docx_path)
    for path in (pdf_path, docx_path):
        print(f"wrote {path.relative_to(HERE.parent)} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
