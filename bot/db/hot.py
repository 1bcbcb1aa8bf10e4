"""The few SELECTs every question runs, on SQLite straight on the driver's cursor.

A who-knows runs five small SELECTs. Through `Session.execute` each pays for
SQLAlchemy's execution machinery: expanding a list parameter into its
placeholders, an execution context, a result object that processes every
value. For the shortlist of 30 people that was 0.32-0.43 ms against 0.19-0.22
on the driver. On SQLite a `HotQuery` compiles its statement once, keeps the
SQL text for each length of its list parameter, and runs it on the session's
own connection (in its transaction), converting parameters and columns with
the type processors SQLAlchemy itself would use. As `Session.execute` does,
it flushes the session's pending changes first, so a unit of work reads what
it wrote. The driver's errors are raised as SQLAlchemy's, so retries and
"database unavailable" replies work as for any statement. What it skips are
the engine's statement events and echo: these SELECTs do not show in
SQLAlchemy's log. On other databases it is `Session.execute`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    head: str  # the SQL up to the list parameter's placeholders (all of it without one)
    tail: str  # the SQL after them
    # Each placeholder's parameter in order: its name, bind processor, and value
    # when the statement holds it (a literal such as a state compared with).
    params: tuple[tuple[str, _Processor, Any], ...]
    columns: tuple[tuple[int, Callable[[Any], Any]], ...]  # column index → result processor


class HotQuery:
    """A SELECT with at most one list parameter (`bindparam(name, expanding=True)`)."""

    def __init__(self, statement: Select[Any], listed: str | None = None) -> None:
        self.statement = statement
        self.listed = listed
        self._compiled: _Compiled | None = None
        self._texts: dict[int, str] = {}  # SQL text by the list's length

    def rows(self, session: Session, params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        connection = session.connection()  # begins the session's transaction if need be
        dialect = connection.dialect
        listed = params.get(self.listed) if self.listed else None
        if dialect.name != "sqlite" or (self.listed and not listed):
            # An empty list is SQLAlchemy's to render (as an empty set).
            return session.execute(self.statement, params).all()
        if session.autoflush:
            session.flush()  # nothing to do, and cheap, in a read-only session
        compiled = self._compiled or self._compile(dialect)
        values: list[Any] = []
        for name, process, held in compiled.params:
            if name == self.listed:
                values.extend(listed if process is None else map(process, listed))  # type: ignore[arg-type]
            else:
                value = params.get(name, held)
                values.append(value if process is None else process(value))
        text = self._text(compiled, len(listed)) if listed else compiled.head
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            rows = cursor.execute(text, values).fetchall()
        except sqlite3.Error as error:
            raise exc.DBAPIError.instance(text, values, error, sqlite3.Error) from error
        finally:
            cursor.close()
        if compiled.columns:
            converted = []
            for row in rows:
                row = list(row)
                for index, process in compiled.columns:
                    row[index] = process(row[index])
                converted.append(tuple(row))
            return converted
        return rows

    def scalar(self, session: Session, params: Mapping[str, Any]) -> Any:
        rows = self.rows(session, params)
        return rows[0][0] if rows else None

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        text = compiled.string
        marker = f"__[POSTCOMPILE_{self.listed}]"
        head, _, tail = text.partition(marker) if self.listed else (text, "", "")
        params = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            params.append((name, process, bind.value))
        columns = []
        for index, column in enumerate(self.statement.selected_columns):
            process = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if process is not None:
                columns.append((index, process))
        self._compiled = _Compiled(head, tail, tuple(params), tuple(columns))
        return self._compiled

    def _text(self, compiled: _Compiled, length: int) -> str:
        text = self._texts.get(length)
        if text is None:
            text = self._texts[length] = compiled.head + ", ".join("?" * length) + compiled.tail
        return text
