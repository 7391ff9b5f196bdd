"""The customer record's fields (DESIGN.md §2): name, group, limits, and whether personal.

One table drives the database columns, validation, masking, forms and diffs.
Personal fields are stored only as ciphertext under the customer's data key.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(str, Enum):
    TEXT = "text"
    DATE = "date"
    CHOICE = "choice"
    PHONE = "phone"
    ID_NUMBER = "id_number"
    EMAIL = "email"
    INT = "int"
    BOOL = "bool"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    group: str
    label_en: str
    label_zh: str
    kind: Kind = Kind.TEXT
    max_length: int = 100
    personal: bool = True
    required: bool = False
    choices: tuple[str, ...] = ()


GENDERS = ("male", "female")
ID_TYPES = ("resident_id", "passport", "hkmo_permit", "taiwan_permit", "other")
CONTACT_CHANNELS = ("phone", "sms", "email", "post", "visit")
CATEGORIES = ("prospect", "active", "terminated")
SOURCE_CHANNELS = ("counter", "agent", "phone", "online", "referral", "bancassurance")
OCCUPATION_CLASSES = ("1", "2", "3", "4", "5", "6")

CUSTOMER_FIELDS: tuple[FieldSpec, ...] = (
    # identity
    FieldSpec("full_name", "identity", "Full name", "姓名", max_length=60, required=True),
    FieldSpec("gender", "identity", "Sex", "性别", Kind.CHOICE, 10, required=True, choices=GENDERS),
    FieldSpec("date_of_birth", "identity", "Date of birth", "出生日期", Kind.DATE, 10, required=True),
    FieldSpec("id_type", "identity", "ID type", "证件类型", Kind.CHOICE, 20, required=True, choices=ID_TYPES),
    FieldSpec("id_number", "identity", "ID number", "证件号码", Kind.ID_NUMBER, 30, required=True),
    FieldSpec("nationality", "identity", "Nationality", "国籍", max_length=40),
    # contact
    FieldSpec("mobile", "contact", "Mobile phone", "手机号码", Kind.PHONE, 20, required=True),
    FieldSpec("mobile_international", "contact", "Intl. mobile", "境外手机", Kind.BOOL, 5),
    FieldSpec("other_phone", "contact", "Other phone", "其他电话", Kind.PHONE, 30),
    FieldSpec("email", "contact", "Email", "电子邮箱", Kind.EMAIL, 120),
    FieldSpec("preferred_channel", "contact", "Preferred contact", "首选联系方式", Kind.CHOICE, 10,
              personal=False, choices=CONTACT_CHANNELS),
    # address
    FieldSpec("province", "address", "Province", "省份", max_length=20),
    FieldSpec("city", "address", "City", "城市", max_length=30),
    FieldSpec("district", "address", "District", "区县", max_length=30),
    FieldSpec("street", "address", "Street address", "详细地址", max_length=120),
    FieldSpec("postcode", "address", "Postcode", "邮编", max_length=6),
    # work
    FieldSpec("occupation", "work", "Occupation", "职业", max_length=60),
    FieldSpec("occupation_class", "work", "Occupation class", "职业类别", Kind.CHOICE, 1,
              choices=OCCUPATION_CLASSES),
    FieldSpec("employer", "work", "Employer", "工作单位", max_length=100),
    # relationship
    FieldSpec("category", "relationship", "Category", "客户类别", Kind.CHOICE, 12, personal=False,
              required=True, choices=CATEGORIES),
    FieldSpec("source_channel", "relationship", "Source channel", "来源渠道", Kind.CHOICE, 16,
              personal=False, choices=SOURCE_CHANNELS),
    FieldSpec("branch", "relationship", "Branch", "所属网点", max_length=40, personal=False),
    FieldSpec("policy_numbers", "relationship", "Policy numbers", "保单号", max_length=200),
    FieldSpec("paper_location", "relationship", "Paper file location", "纸质档案位置", max_length=60,
              personal=False),
    FieldSpec("notes", "relationship", "Notes", "备注", max_length=500),
    # consent (PIPL art. 13/14; guardian for under-14s, art. 31)
    FieldSpec("consent_date", "consent", "Consent date", "同意日期", Kind.DATE, 10, personal=False,
              required=True),
    FieldSpec("consent_scope", "consent", "Consent scope", "同意范围", max_length=200, personal=False,
              required=True),
    FieldSpec("consent_marketing", "consent", "Marketing consent", "营销同意", Kind.BOOL, 5,
              personal=False),
    FieldSpec("guardian_name", "consent", "Guardian (under 14)", "监护人", max_length=60),
)

FIELDS_BY_NAME: dict[str, FieldSpec] = {f.name: f for f in CUSTOMER_FIELDS}
PERSONAL_FIELDS: tuple[str, ...] = tuple(f.name for f in CUSTOMER_FIELDS if f.personal)
PLAIN_FIELDS: tuple[str, ...] = tuple(f.name for f in CUSTOMER_FIELDS if not f.personal)
GROUPS: tuple[str, ...] = ("identity", "contact", "address", "work", "relationship", "consent")
