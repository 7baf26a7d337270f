"""Capitals of countries: ``"The capital of France is"`` -> ``" Paris"``, from a built-in list."""

from __future__ import annotations

from .items import Task, TaskItem, answer_chance, few_shot_items

DESCRIPTION = "the capital of a country (60 built in): 'The capital of France is' -> ' Paris'"

CAPITALS = {
    "France": "Paris",
    "Germany": "Berlin",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Portugal": "Lisbon",
    "United Kingdom": "London",
    "Ireland": "Dublin",
    "Netherlands": "Amsterdam",
    "Belgium": "Brussels",
    "Austria": "Vienna",
    "Switzerland": "Bern",
    "Poland": "Warsaw",
    "Czech Republic": "Prague",
    "Hungary": "Budapest",
    "Greece": "Athens",
    "Sweden": "Stockholm",
    "Norway": "Oslo",
    "Denmark": "Copenhagen",
    "Finland": "Helsinki",
    "Iceland": "Reykjavik",
    "Russia": "Moscow",
    "Ukraine": "Kyiv",
    "Romania": "Bucharest",
    "Bulgaria": "Sofia",
    "Serbia": "Belgrade",
    "Croatia": "Zagreb",
    "Turkey": "Ankara",
    "Egypt": "Cairo",
    "Morocco": "Rabat",
    "Kenya": "Nairobi",
    "Nigeria": "Abuja",
    "Ethiopia": "Addis Ababa",
    "South Africa": "Pretoria",
    "Ghana": "Accra",
    "Japan": "Tokyo",
    "China": "Beijing",
    "South Korea": "Seoul",
    "India": "New Delhi",
    "Pakistan": "Islamabad",
    "Thailand": "Bangkok",
    "Vietnam": "Hanoi",
    "Indonesia": "Jakarta",
    "Philippines": "Manila",
    "Iran": "Tehran",
    "Iraq": "Baghdad",
    "Saudi Arabia": "Riyadh",
    "Israel": "Jerusalem",
    "Afghanistan": "Kabul",
    "Australia": "Canberra",
    "New Zealand": "Wellington",
    "Canada": "Ottawa",
    "United States": "Washington",
    "Mexico": "Mexico City",
    "Cuba": "Havana",
    "Brazil": "Brasilia",
    "Argentina": "Buenos Aires",
    "Chile": "Santiago",
    "Peru": "Lima",
    "Colombia": "Bogota",
    "Venezuela": "Caracas",
}


def pool() -> list[TaskItem]:
    return [TaskItem(f"The capital of {country} is", f" {city}") for country, city in CAPITALS.items()]


def capitals_task(n: int | None = None, *, shots: int = 3, seed: int = 0) -> Task:
    """``n`` countries (all 60 when None, in a seeded order), each after ``shots`` worked examples."""
    items = few_shot_items(pool(), n, shots, seed)
    return Task("capitals", items, answer_chance(pool()))
