"""The knowledge base: articles agents, managers and admins write, and semantic search over the
published ones, for the assistant's answers and the agent console's search box.

Who may do what (one rule, applied by every function here):
- agents, managers and admins write articles and see drafts (unpublished ones);
- everyone signed in reads published articles; search never returns a draft or a deleted article
  unless a writer asks for drafts explicitly; visitors (no actor) may search the published ones.

Search compares sentence vectors (cosine similarity; the vectors are unit length) made by an
`Embedder` handed in from outside: the CRM never imports a model library. An article is embedded
as a few overlapping passages; its score is its best passage's. Stored vectors remember the hash
of the text and the model they came from, so an edited article (by any path: API, import, an
action) is stale and is embedded again by the next search or `refresh_embeddings`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Annotated, Any, Protocol, cast

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import ColumnElement, Table, and_, delete, insert, select

from crm_backend.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from crm_backend.models.base import utcnow
from crm_backend.models.knowledge import KnowledgeArticle, KnowledgeEmbedding, PassageKind
from crm_backend.models.users import Role
from crm_backend.schemas import schemas_for
from crm_backend.services import records
from crm_backend.services.records import ListQuery, Page, Resource
from crm_backend.services.scopes import Visibility
from crm_backend.services.validation import validated
from crm_backend.store import Actor, Store, UnitOfWork

WRITERS = frozenset({Role.AGENT, Role.MANAGER, Role.ADMIN})
# Below this cosine similarity no article answers the question (the assistant says it does not know
# and offers a person). Measured with MiniLM over the demo articles (tests/unit/crm_backend/
# test_knowledge.py): the right article's score was 0.316-0.847 (47 prospect questions, all ranked
# first), off-topic questions' best score 0.108-0.282. Questions about the product that no article
# answers ("do you integrate with SAP") can score up to ~0.47: the threshold cannot catch those.
DEFAULT_MIN_SCORE = 0.30
MAX_QUERY_CHARS = 1000
MAX_LIMIT = 20
SNIPPET_CHARS = 240
QUOTE_MIN_CHARS = 80  # a shorter best sentence is quoted with its neighbour

Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
TAGS: tuple[Any, Any] = (list[Tag], Field(max_length=20, description="up to 20 short tags"))

ArticleCreate, ArticleUpdate, ArticleRead = schemas_for(
    KnowledgeArticle,
    overrides={
        "title": (str, Field(min_length=1, max_length=300)),
        "body": (str, Field(min_length=1, max_length=20_000)),
        "tags": TAGS,
    },
)
ArticleCreate.__doc__ = "A new knowledge article (a draft unless `published` is true)."
ArticleUpdate.__doc__ = "The fields of a knowledge article to change; the others stay."

# Reads go through the generic record functions (filters, text search, sorting, paging); this
# module narrows what they return with `_narrow`, since published/draft is not a registry rule.
ARTICLES = Resource(
    name="knowledge-articles",
    model=KnowledgeArticle,
    create_schema=ArticleCreate,
    update_schema=ArticleUpdate,
    read_schema=ArticleRead,
    visibility=Visibility.REFERENCE,
    search=("title", "body"),
    filters=("published", "created_at", "updated_at"),
    sort=("id", "created_at", "updated_at", "title"),
    default_sort="title",
    label="knowledge article",
)


class Embedder(Protocol):
    """Turns texts into unit-length vectors; `name` identifies the model (vectors of another name are
    stale). The assistant's implementation is `assistant.embeddings.MiniLMEmbedder`."""

    @property
    def name(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


@dataclass(frozen=True)
class KnowledgeHit:
    """One article that answers a question: what to cite (id, title), what to quote, and how well it matched."""

    article_id: int
    title: str
    snippet: str
    score: float  # cosine similarity of the best passage, -1 … 1
    tags: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "article_id": self.article_id,
            "title": self.title,
            "snippet": self.snippet,
            "score": self.score,
            "tags": list(self.tags),
        }


# --- who may do what -------------------------------------------------------------------------------
def may_write(actor: Actor | None) -> bool:
    """Agents, managers and admins write the knowledge base (and see its drafts)."""
    return actor is not None and actor.role in WRITERS


def visible_articles(actor: Actor | None, *, include_unpublished: bool = False) -> ColumnElement[bool]:
    """A WHERE clause keeping the articles `actor` may read: never deleted ones; drafts only for writers
    who ask for them."""
    alive = KnowledgeArticle.deleted_at.is_(None)
    if include_unpublished and may_write(actor):
        return alive
    return and_(alive, KnowledgeArticle.published.is_(True))


def _require_writer(uow: UnitOfWork) -> Actor:
    actor = uow.require_actor()
    if not may_write(actor):
        raise PermissionDenied("Only agents, managers and admins may write knowledge articles.")
    return actor


# --- the collection ---------------------------------------------------------------------------------
def _narrow(actor: Actor, query: ListQuery) -> ListQuery:
    """Readers list published articles only: their own filters apply on top (asking for drafts finds none)."""
    if may_write(actor):
        return query
    return replace(query, filters={**query.filters, "published__eq": "true"})


def list_articles(uow: UnitOfWork, query: ListQuery) -> Page:
    """A page of the articles the acting user may read (writers see drafts too)."""
    actor = uow.require_actor()
    return records.list_records(uow, ARTICLES, _narrow(actor, query))


def get_article(uow: UnitOfWork, article_id: int) -> KnowledgeArticle:
    """One article the acting user may read; a draft is 'not found' to a reader."""
    actor = uow.require_actor()
    article: KnowledgeArticle = records.get_record(uow, ARTICLES, article_id)
    if not article.published and not may_write(actor):
        raise NotFound(f"No knowledge article with id {article_id}.")
    return article


def create_article(uow: UnitOfWork, data: BaseModel | Mapping[str, Any]) -> KnowledgeArticle:
    """A new article (validated; a draft unless `published`); its vectors are made by the next search."""
    _require_writer(uow)
    payload = validated(ArticleCreate, dict(data) if isinstance(data, Mapping) else data)
    article = KnowledgeArticle(**payload.model_dump(exclude_unset=True))
    uow.session.add(article)
    uow.session.flush()
    return article


def update_article(
    uow: UnitOfWork, article_id: int, data: BaseModel | Mapping[str, Any], expected_version: int | None = None
) -> KnowledgeArticle:
    """Change the fields sent; a stale `expected_version` is a conflict. A changed text makes the stored
    vectors stale."""
    article = get_article(uow, article_id)
    _require_writer(uow)
    payload = validated(ArticleUpdate, dict(data) if isinstance(data, Mapping) else data)
    _check_version(article, expected_version)
    for key, value in payload.model_dump(exclude_unset=True).items():
        if getattr(article, key) != value:
            setattr(article, key, value)
    uow.session.flush()
    return article


def delete_article(uow: UnitOfWork, article_id: int, expected_version: int | None = None) -> None:
    """Soft-delete an article (its history stays in the audit log) and drop its vectors."""
    article = get_article(uow, article_id)
    _require_writer(uow)
    _check_version(article, expected_version)
    article.deleted_at = utcnow()
    uow.session.flush()
    uow.session.execute(delete(_EMBEDDINGS).where(_EMBEDDINGS.c.article_id == article.id))


def serialize(article: KnowledgeArticle) -> dict[str, Any]:
    """The article as the API returns it (JSON-ready)."""
    return records.serialize(ARTICLES, article)


def _check_version(article: KnowledgeArticle, expected_version: int | None) -> None:
    if expected_version is not None and article.version != expected_version:
        raise Conflict(
            f"This knowledge article is at version {article.version}, not {expected_version}: someone changed "
            "it. Reload it and try again."
        )


# --- vectors ----------------------------------------------------------------------------------------
# Vectors are derived data: written with plain table statements, so they are neither audited nor
# passed to the engines as changes, and refreshing them never bumps an article's version.
_EMBEDDINGS = cast(Table, KnowledgeEmbedding.__table__)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
# Vectors read from the database, by what they were computed from (model, content hash, passage):
# the same key always means the same vector, so entries never go stale, whichever database they
# came from. Search then parses only the vectors it has not seen before.
_VECTORS: dict[tuple[str, str, int], npt.NDArray[np.float32]] = {}
_MAX_CACHED = 200_000


@dataclass(frozen=True)
class Passage:
    kind: PassageKind
    text: str  # what is embedded
    excerpt: str  # what a hit quotes when this passage is its best quote


def content_hash(title: str, body: str, tags: Sequence[str]) -> str:
    """What an article's vectors were computed from: its title, body and tags."""
    return hashlib.sha256(json.dumps([title, body, sorted(tags)], ensure_ascii=False).encode()).hexdigest()


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]


def _quote(parts: list[str], i: int) -> str:
    """Sentence `i`, with its neighbour when it is too short to stand alone ("Your data is always yours.")."""
    if len(parts[i]) >= QUOTE_MIN_CHARS or len(parts) == 1:
        return parts[i]
    return f"{parts[i]} {parts[i + 1]}" if i + 1 < len(parts) else f"{parts[i - 1]} {parts[i]}"


def passages(title: str, body: str, tags: Sequence[str]) -> list[Passage]:
    """The texts an article is embedded as. Its score for a question is the best of the ranking ones:
    the whole article (the model reads its first 256 word pieces), the title with the tags, and every
    sentence and pair of neighbouring sentences under the title, so a question about one detail finds
    the article even when the rest of it is about something else. Each bare sentence is embedded too,
    only to choose what to quote (the title would otherwise decide that)."""
    topics = f" ({', '.join(tags)})" if tags else ""
    parts = sentences(body)
    lead = " ".join(parts[:2])
    out = [
        Passage(PassageKind.ARTICLE, f"{title}{topics}. {' '.join(parts)}", lead),
        Passage(PassageKind.TITLE, f"{title}{topics}", lead),
    ]
    out += [Passage(PassageKind.SENTENCE, f"{title}. {p}", p) for p in parts]
    out += [Passage(PassageKind.PAIR, f"{title}. {a} {b}", f"{a} {b}") for a, b in pairwise(parts)]
    out += [Passage(PassageKind.QUOTE, p, _quote(parts, i)) for i, p in enumerate(parts)]
    return out


def _stored_state(uow: UnitOfWork) -> dict[int, tuple[str, str]]:
    """article id → (model, content hash) of its stored vectors."""
    rows = uow.session.execute(
        select(_EMBEDDINGS.c.article_id, _EMBEDDINGS.c.model, _EMBEDDINGS.c.content_hash).where(
            _EMBEDDINGS.c.passage == 0
        )
    )
    return {int(r.article_id): (str(r.model), str(r.content_hash)) for r in rows}


def _changes(uow: UnitOfWork, embedder_name: str) -> tuple[list[tuple[KnowledgeArticle, str]], set[int]]:
    """(live articles whose vectors are missing or stale, with their content hash; ids of articles
    whose vectors should go because they were deleted)."""
    stored = _stored_state(uow)
    live = list(uow.session.scalars(select(KnowledgeArticle).where(KnowledgeArticle.deleted_at.is_(None))))
    stale = [
        (article, digest)
        for article in live
        if stored.get(article.id) != (embedder_name, digest := content_hash(article.title, article.body, article.tags))
    ]
    return stale, set(stored) - {a.id for a in live}


def needs_refresh(uow: UnitOfWork, embedder: Embedder) -> bool:
    """Whether `refresh_embeddings` has anything to do (checked without writing)."""
    stale, gone = _changes(uow, embedder.name)
    return bool(stale or gone)


@dataclass(frozen=True)
class EmbeddingWork:
    """What a refresh has to do: the passages of stale articles (with the content hash they were read at)
    and the ids of articles whose vectors must go."""

    stale: list[tuple[int, str, list[Passage]]]
    gone: set[int]

    @property
    def texts(self) -> list[str]:
        return [p.text for _id, _digest, ps in self.stale for p in ps]


def pending_embeddings(uow: UnitOfWork, embedder_name: str) -> EmbeddingWork:
    """The refresh work, read without writing (a read-only unit of work will do)."""
    changed, gone = _changes(uow, embedder_name)
    return EmbeddingWork([(a.id, digest, passages(a.title, a.body, a.tags)) for a, digest in changed], gone)


def save_embeddings(uow: UnitOfWork, work: EmbeddingWork, model: str, vectors: Sequence[Sequence[float]]) -> int:
    """Store vectors computed for `work` (one per passage, in order); an article edited since `work` was read
    is left stale for the next refresh. Returns how many articles were embedded."""
    current = {a.id: digest for a, digest in _changes(uow, model)[0]}
    fresh = [(i, d, ps) for i, d, ps in work.stale if current.get(i) == d]
    redo = work.gone | {i for i, _d, _ps in fresh}
    if redo:
        uow.session.execute(delete(_EMBEDDINGS).where(_EMBEDDINGS.c.article_id.in_(redo)))
    if not fresh:
        return 0
    by_article: dict[int, list[Sequence[float]]] = {}
    flat = iter(vectors)
    for article_id, _digest, ps in work.stale:
        by_article[article_id] = [next(flat) for _p in ps]
    now = utcnow()
    rows = [
        {
            "article_id": article_id,
            "passage": i,
            "kind": p.kind,
            "model": model,
            "content_hash": digest,
            "vector": [round(float(x), 6) for x in by_article[article_id][i]],
            "computed_at": now,
        }
        for article_id, digest, ps in fresh
        for i, p in enumerate(ps)
    ]
    uow.session.execute(insert(_EMBEDDINGS), rows)
    return len(fresh)


def refresh_embeddings(uow: UnitOfWork, embedder: Embedder) -> int:
    """Embed every live article whose text (or the embedder) changed since its vectors were made, and
    drop the vectors of deleted articles, in this unit of work. Returns how many articles were embedded."""
    work = pending_embeddings(uow, embedder.name)
    vectors = embedder.embed(work.texts) if work.stale else []
    return save_embeddings(uow, work, embedder.name, vectors)


def refresh_in(store: Store, embedder: Embedder) -> int:
    """`refresh_embeddings` without holding the database's write lock while the model runs (seconds for a
    fresh set of articles on a small CPU): read the work, embed outside any transaction, write briefly."""
    with store.unit_of_work(None, "knowledge", read_only=True) as uow:
        work = pending_embeddings(uow, embedder.name)
    if not work.stale and not work.gone:
        return 0
    vectors = embedder.embed(work.texts) if work.stale else []
    with store.unit_of_work(None, "knowledge") as uow:
        return save_embeddings(uow, work, embedder.name, vectors)


def is_stale(uow: UnitOfWork, article_id: int, embedder_name: str) -> bool:
    """Whether the article's stored vectors are missing or were made from other text or another model."""
    article = uow.session.get(KnowledgeArticle, article_id)
    if article is None:
        raise NotFound(f"No knowledge article with id {article_id}.")
    stored = _stored_state(uow).get(article_id)
    return stored != (embedder_name, content_hash(article.title, article.body, article.tags))


def _vectors(uow: UnitOfWork, rows: Sequence[Any]) -> npt.NDArray[np.float32]:
    """The stored vectors of `rows` (id, model, content_hash, passage), one per row, parsing only
    those not read before."""
    keys = [(str(r.model), str(r.content_hash), int(r.passage)) for r in rows]
    missing = [int(r.id) for r, key in zip(rows, keys, strict=True) if key not in _VECTORS]
    if len(_VECTORS) + len(missing) > _MAX_CACHED:
        _VECTORS.clear()
        missing = [int(r.id) for r in rows]
    for start in range(0, len(missing), 500):
        chunk = missing[start : start + 500]
        for r in uow.session.execute(
            select(_EMBEDDINGS.c.model, _EMBEDDINGS.c.content_hash, _EMBEDDINGS.c.passage, _EMBEDDINGS.c.vector).where(
                _EMBEDDINGS.c.id.in_(chunk)
            )
        ):
            _VECTORS[(str(r.model), str(r.content_hash), int(r.passage))] = np.asarray(r.vector, dtype=np.float32)
    return np.stack([_VECTORS[key] for key in keys])


# --- search -----------------------------------------------------------------------------------------
def _snippet(text: str) -> str:
    if len(text) <= SNIPPET_CHARS:
        return text
    cut = text[:SNIPPET_CHARS].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"


def search(
    uow: UnitOfWork,
    embedder: Embedder,
    query: str,
    *,
    limit: int = 3,
    min_score: float = DEFAULT_MIN_SCORE,
    include_unpublished: bool = False,
    refresh: bool = True,
) -> list[KnowledgeHit]:
    """The articles that answer `query`, best first, each scoring at least `min_score`; [] when none
    does. Stale vectors are recomputed first, so this writes unless the caller refreshed them already
    (`refresh=False`, e.g. in a read-only unit of work after `needs_refresh` said no)."""
    text = " ".join(query.split())
    if not text:
        raise ValidationFailed({"q": "ask something"})
    if len(text) > MAX_QUERY_CHARS:
        raise ValidationFailed({"q": f"at most {MAX_QUERY_CHARS} characters"})
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed({"limit": f"must be between 1 and {MAX_LIMIT}"})
    if include_unpublished and not may_write(uow.actor):
        raise PermissionDenied("Only agents, managers and admins may search drafts.")
    if refresh:
        refresh_embeddings(uow, embedder)
    e = _EMBEDDINGS.c
    rows = uow.session.execute(
        select(e.id, e.article_id, e.passage, e.kind, e.model, e.content_hash)
        .join(KnowledgeArticle, KnowledgeArticle.id == e.article_id)
        .where(visible_articles(uow.actor, include_unpublished=include_unpublished), e.model == embedder.name)
    ).all()
    if not rows:
        return []
    question = np.asarray(embedder.embed([text])[0], dtype=np.float32)
    similarity = (_vectors(uow, rows) @ question).tolist()
    best: dict[int, float] = {}  # article id → its score (best ranking passage)
    quote: dict[int, tuple[float, int]] = {}  # article id → (similarity, passage) of the best quote
    for row, score in zip(rows, similarity, strict=True):
        article_id = int(row.article_id)
        if row.kind == PassageKind.QUOTE:
            if article_id not in quote or score > quote[article_id][0]:
                quote[article_id] = (score, int(row.passage))
        elif score > best.get(article_id, -2.0):
            best[article_id] = score
    ranked = sorted((a for a, s in best.items() if s >= min_score), key=lambda a: (-best[a], a))[:limit]
    hits: list[KnowledgeHit] = []
    for article_id in ranked:
        article = uow.session.get(KnowledgeArticle, article_id)
        if article is None:
            continue
        parts = passages(article.title, article.body, article.tags)
        excerpt = parts[quote[article_id][1]].excerpt if article_id in quote else parts[0].excerpt
        hits.append(
            KnowledgeHit(article.id, article.title, _snippet(excerpt), round(best[article_id], 4), tuple(article.tags))
        )
    return hits
