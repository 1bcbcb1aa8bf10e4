"""Seed data for the whoknows demo org.

A small mobile and broadband operator contact center: three teams, a
two-level topic taxonomy, thirty people with skills, and a knowledge base.
Loaded once on first run so a newcomer typing `whoknows refunds` gets a
real answer. Pure data, one file per part: no logic lives here.
"""

from bot.data.demo.knowledge import KNOWLEDGE
from bot.data.demo.org import TAGS, TEAMS
from bot.data.demo.people import PEOPLE

__all__ = ["KNOWLEDGE", "PEOPLE", "TAGS", "TEAMS"]
