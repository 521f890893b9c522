"""Demo knowledge-base articles for Northwind Analytics (the demo's B2B analytics SaaS), published so the
assistant can answer prospects' questions from them. Seeded with the demo's extras (`seed_demo`)."""

from __future__ import annotations

from crm_backend.models.knowledge import KnowledgeArticle
from crm_backend.services import knowledge
from crm_backend.store import UnitOfWork

# (title, tags, body)
DEMO_ARTICLES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (
        "Pricing and plans",
        ("pricing", "plans", "cost"),
        "Northwind Analytics has three plans. Starter costs $49 per user per month and includes unlimited "
        "dashboards, 10 data sources and email support. Growth costs $99 per user per month and adds unlimited "
        "data sources, scheduled reports, row-level permissions and chat support. Enterprise is priced per "
        "contract and adds single sign-on (SAML), audit logs, a dedicated customer success manager, a 99.95% "
        "uptime SLA and a choice of data region. Paying yearly instead of monthly saves 15% on Starter and "
        "Growth. Viewers who only look at shared dashboards are free on every plan, so you only pay for the "
        "people who build reports. Nonprofits and universities get 30% off; ask our sales team for the "
        "discount code. Prices are in US dollars and exclude VAT or sales tax.",
    ),
    (
        "Free trial: try before you buy",
        ("trial", "evaluation", "getting started"),
        "You can try Northwind Analytics free for 14 days before you pay anything. The trial includes every "
        "feature of the Growth plan, up to 10 users and all connectors, and no credit card is needed to start. "
        "Sign up with your work email and you will have a workspace with sample data in about a minute. A "
        "week before the trial ends we email you a reminder. If you want to keep going, choose a plan and add "
        "billing details in Settings > Billing; your dashboards and data stay exactly as they are. If you do "
        "nothing, the workspace is paused (not deleted) for 30 days, so you can still upgrade later. Need more "
        "time to evaluate? Our sales team can extend a trial once by another 14 days.",
    ),
    (
        "Booking a product demo",
        ("demo", "sales", "meeting"),
        "Want to see Northwind Analytics before signing up? Book a live demo with one of our solution "
        "engineers. Demos are 30-minute video calls, held in English, German or French, Monday to Friday "
        "between 8:00 and 18:00 CET and 9:00 to 17:00 Eastern Time. Pick a slot on northwind-analytics.example"
        "/demo, or ask this assistant to put you in touch with sales and a colleague will send you times. "
        "Tell us which tools you use today (spreadsheets, Salesforce, a data warehouse) and we will show the "
        "connectors and dashboards that matter to you. For teams of 50 or more we also offer a guided "
        "proof-of-concept with your own data.",
    ),
    (
        "Integrations: Salesforce, HubSpot, Slack and more",
        ("integrations", "connectors", "salesforce", "hubspot", "slack"),
        "Northwind Analytics connects to more than 120 data sources. The CRM connectors for Salesforce and "
        "HubSpot sync accounts, contacts, deals and activities every 15 minutes (every 5 minutes on "
        "Enterprise) and need only a read-only user to authorise. Warehouses are supported natively: "
        "Snowflake, BigQuery, Redshift, PostgreSQL and MySQL, queried live or cached. Files from Google Sheets, "
        "Excel and CSV uploads work on every plan. The Slack app posts scheduled dashboard snapshots and "
        "threshold alerts into channels, and you can ask it for a chart with /northwind. Microsoft Teams has "
        "the same app. Anything else can come in through our REST API or Zapier. Set up connectors in "
        "Settings > Data sources.",
    ),
    (
        "Single sign-on (SSO) with SAML",
        ("sso", "saml", "security", "login"),
        "Enterprise workspaces can require single sign-on with any SAML 2.0 identity provider, including "
        "Okta, Microsoft Entra ID (Azure AD), Google Workspace, OneLogin and JumpCloud. Once SSO is on, people "
        "sign in with their company account instead of a Northwind password, and removing someone in your "
        "identity provider removes their access. SCIM provisioning creates and deactivates users and syncs "
        "groups to Northwind teams automatically. Setup takes about fifteen minutes: an admin opens Settings "
        "> Security > Single sign-on, downloads our metadata, and uploads the metadata of your provider. You "
        "can test SSO with a few users before enforcing it for everyone. Starter and Growth plans support "
        "sign-in with Google or Microsoft accounts, but not SAML.",
    ),
    (
        "Security and SOC 2 compliance",
        ("security", "soc 2", "compliance", "encryption"),
        "Northwind Analytics holds a SOC 2 Type II report and an ISO 27001 certificate, both audited every "
        "year by an independent firm. Customers can request the latest SOC 2 report under NDA from our trust "
        "centre. All data is encrypted in transit with TLS 1.2 or newer and at rest with AES-256. Production "
        "access is limited to a small on-call team, requires hardware security keys, and every access is "
        "logged. We run annual penetration tests by an outside company and a public bug bounty programme. "
        "Backups are encrypted and kept for 35 days. If you need to fill in a security questionnaire, our "
        "team can send a completed CAIQ and answer the rest within five business days.",
    ),
    (
        "GDPR and data residency (EU and US hosting)",
        ("gdpr", "data residency", "privacy", "hosting", "europe"),
        "You choose where your data lives when you create a workspace: our EU region in Frankfurt, Germany, "
        "or our US region in Virginia. Data in the EU region, including backups, never leaves the European "
        "Union. Northwind Analytics is GDPR compliant; we act as a data processor and sign a Data Processing "
        "Agreement (DPA) with Standard Contractual Clauses with every customer. Our list of sub-processors is "
        "public and we announce changes 30 days ahead. Tools for data subject requests let admins find, "
        "export and erase a person's data. Moving an existing workspace from one region to another is "
        "possible on Enterprise plans and is done by our support team with no data loss.",
    ),
    (
        "Exporting your data",
        ("export", "data", "csv", "backup"),
        "Your data is always yours. Every chart and table can be downloaded as CSV, Excel or PDF with the "
        "export button, and whole dashboards export to PDF or PNG. Admins can export the complete workspace "
        "(dashboards, queries, datasets and user list) as a ZIP archive from Settings > Workspace > Export; "
        "large exports are prepared in the background and you get an email with a download link that works "
        "for 7 days. Scheduled exports can drop CSV files into Amazon S3, Google Cloud Storage or an SFTP "
        "server every day. If you leave Northwind, you can still export everything for 30 days after your "
        "subscription ends.",
    ),
    (
        "API access and rate limits",
        ("api", "rate limits", "developers", "webhooks"),
        "The Northwind REST API lets you manage dashboards, run queries, push data and embed charts in your "
        "own product. Create an API key in Settings > API keys; keys can be read-only or read-write and can "
        "be revoked at any time. Rate limits are 60 requests per minute on Starter, 300 per minute on Growth "
        "and 1,000 per minute on Enterprise. When you go over the limit the API answers HTTP 429 with a "
        "Retry-After header. Webhooks notify your systems when a report finishes or an alert fires. Full "
        "reference documentation, an OpenAPI file and client libraries for Python and JavaScript are on "
        "developers.northwind-analytics.example.",
    ),
    (
        "Support hours and SLA",
        ("support", "sla", "help", "contact"),
        "Our support team answers by email and in-app chat. Support hours are Monday to Friday, 8:00 to 20:00 "
        "CET, and 8:00 to 20:00 US Eastern Time, so most questions are answered the same working day. "
        "Starter customers get email support with a first response within one business day. Growth adds chat "
        "support with a first response within 4 business hours. Enterprise customers have 24/7 support for "
        "urgent issues, a one-hour first response for outages, a named customer success manager and a "
        "99.95% uptime SLA with service credits. You can open a ticket from the help menu in the app or by "
        "writing to support@northwind-analytics.example.",
    ),
    (
        "Onboarding and training",
        ("onboarding", "training", "setup", "getting started"),
        "Every new customer gets a guided onboarding. In the first week a specialist helps you connect your "
        "data sources, build your first three dashboards and invite your team. Growth customers get two live "
        "onboarding sessions; Enterprise customers get a full onboarding project with a plan, weekly check-ins "
        "and admin training. Anyone can use Northwind Academy, our free library of short video courses, and "
        "join the weekly live Q&A webinar. Most teams have their first useful dashboard on day one and are "
        "fully set up within two weeks. We can also migrate existing reports from tools like Tableau, Power BI "
        "or Looker.",
    ),
    (
        "Billing, invoices and payment methods",
        ("billing", "invoice", "payment", "vat"),
        "You can pay by credit card (Visa, Mastercard, American Express) or, on yearly plans, by bank "
        "transfer against an invoice with 30-day payment terms. Invoices are issued in USD, EUR or GBP and "
        "are emailed to your billing contact each month or year; admins can download all past invoices as PDF "
        "in Settings > Billing. To add your VAT number, a purchase order number or a different billing "
        "address, edit your billing details there and future invoices will show them. Adding users during a "
        "billing period is charged pro rata. If a card payment fails we retry three times over ten days and "
        "email you before anything is paused.",
    ),
    (
        "Cancellation and refunds",
        ("cancellation", "refund", "cancel", "contract"),
        "Monthly plans can be cancelled at any time from Settings > Billing > Cancel subscription; you keep "
        "access until the end of the month you have paid for, and there is no cancellation fee. Yearly plans "
        "run for the full year and renew automatically unless you cancel at least 30 days before the renewal "
        "date. If you are not happy in the first 30 days of your first paid subscription, we refund you in "
        "full, no questions asked. After that, unused time is not refunded, except when we fail to meet our "
        "uptime SLA. After cancelling, your data is kept for 30 days so you can export it, and then deleted.",
    ),
    (
        "Mobile app",
        ("mobile", "ios", "android", "app"),
        "The Northwind Analytics mobile app for iPhone, iPad and Android phones lets you view dashboards, get "
        "push notifications for alerts and share charts from anywhere. It is included in every plan at no "
        "extra cost; download it from the App Store or Google Play and sign in with your usual account or "
        "with SSO. Dashboards adapt to small screens automatically, and you can mark favourites for quick "
        "access. Offline mode keeps your last viewed dashboards available without a connection. Building and "
        "editing dashboards is done in the web app; the mobile app is for viewing and sharing.",
    ),
    (
        "Uptime, outages and the status page",
        ("uptime", "status", "outage", "incident", "availability"),
        "Is Northwind Analytics down, or is it just you? Our status page at status.northwind-analytics.example "
        "shows the current state of the service and the history of past incidents. The platform has had "
        "99.98% uptime over the last twelve months. Subscribe there to get an email, SMS or Slack message when an "
        "incident starts and when it is resolved. Planned maintenance is announced at least five days ahead "
        "and scheduled on weekends outside business hours. Every major incident gets a public post-mortem "
        "within five business days. Enterprise customers have a 99.95% uptime SLA with service credits if we "
        "miss it.",
    ),
)


def seed_knowledge_articles(uow: UnitOfWork) -> list[KnowledgeArticle]:
    """Add the demo articles, published, as the acting user (who must be allowed to write articles)."""
    return [
        knowledge.create_article(uow, {"title": title, "tags": list(tags), "body": body, "published": True})
        for title, tags, body in DEMO_ARTICLES
    ]
