"""Every aggregate's model, imported here so that `Base.metadata` knows all tables."""

from crm_backend.models.accounts import Account, AccountType
from crm_backend.models.activities import (
    Activity,
    ActivityStatus,
    ActivityType,
    BookingAttendee,
    BookingStatus,
    BookingType,
    CalendarBooking,
    LocationType,
    Priority,
    RecurrencePattern,
    RecurringActivity,
    Reminder,
    ReminderChannel,
    ReminderStatus,
)
from crm_backend.models.annotations import CustomFieldDefinition, CustomFieldType, Note, Tag, Tagging
from crm_backend.models.audit import AuditLog
from crm_backend.models.automation import (
    EntityScore,
    EntityType,
    Macro,
    MacroRun,
    MacroRunStatus,
    MacroTrigger,
    RescoreRequest,
    ScoringRule,
    ScoringRuleSet,
    ScoringRuleSetMember,
)
from crm_backend.models.base import Base
from crm_backend.models.campaigns import Campaign, CampaignStatus, CampaignType
from crm_backend.models.contacts import Contact, ContactFrequency, ContactMethod, ContactRole, ContactType
from crm_backend.models.channels import ChannelEvent, ConversationTurn, LinkCode, OfferedButton, TeamRoom
from crm_backend.models.conversations import AssistantChange, Conversation
from crm_backend.models.currencies import Currency
from crm_backend.models.deals import CLOSED_STAGES, STAGE_PROBABILITY, Deal, DealStage, DealType
from crm_backend.models.documents import AccessLevel, Document, DocumentType
from crm_backend.models.feeds import FeedItem, FeedType, SalesSignal, SignalCategory
from crm_backend.models.forecasts import ForecastMethod, ForecastPeriod, SalesForecast, TerritoryForecast
from crm_backend.models.integrations import SocialIntegration, SocialPlatform
from crm_backend.models.knowledge import KnowledgeArticle, KnowledgeEmbedding
from crm_backend.models.leads import Lead, LeadSource, LeadStatus
from crm_backend.models.notifications import DeliveryStatus, Notification, SchedulerLease
from crm_backend.models.service_desk import Ticket, TicketStatus
from crm_backend.models.territories import Territory, TerritoryType, territory_managers
from crm_backend.models.users import ApiToken, ChannelIdentity, Role, Team, User

__all__ = [
    "DeliveryStatus",
    "EntityScore",
    "MacroRun",
    "MacroRunStatus",
    "MacroTrigger",
    "RescoreRequest",
    "Notification",
    "SchedulerLease",
    "CLOSED_STAGES",
    "STAGE_PROBABILITY",
    "AccessLevel",
    "Account",
    "AccountType",
    "Activity",
    "ActivityStatus",
    "ActivityType",
    "ApiToken",
    "AuditLog",
    "Base",
    "BookingAttendee",
    "BookingStatus",
    "BookingType",
    "CalendarBooking",
    "Campaign",
    "CampaignStatus",
    "CampaignType",
    "ChannelEvent",
    "ChannelIdentity",
    "ConversationTurn",
    "LinkCode",
    "OfferedButton",
    "TeamRoom",
    "Contact",
    "ContactFrequency",
    "ContactMethod",
    "ContactRole",
    "ContactType",
    "AssistantChange",
    "Conversation",
    "Currency",
    "CustomFieldDefinition",
    "CustomFieldType",
    "Deal",
    "DealStage",
    "DealType",
    "Document",
    "DocumentType",
    "EntityType",
    "FeedItem",
    "FeedType",
    "ForecastMethod",
    "ForecastPeriod",
    "KnowledgeArticle",
    "KnowledgeEmbedding",
    "Lead",
    "LeadSource",
    "LeadStatus",
    "LocationType",
    "Macro",
    "Note",
    "Priority",
    "RecurrencePattern",
    "RecurringActivity",
    "Reminder",
    "ReminderChannel",
    "ReminderStatus",
    "Role",
    "SalesForecast",
    "SalesSignal",
    "ScoringRule",
    "ScoringRuleSet",
    "ScoringRuleSetMember",
    "SignalCategory",
    "SocialIntegration",
    "SocialPlatform",
    "Tag",
    "Tagging",
    "Team",
    "Territory",
    "TerritoryForecast",
    "TerritoryType",
    "Ticket",
    "TicketStatus",
    "User",
    "territory_managers",
]
