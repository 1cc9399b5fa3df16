"""`cutpilot products import|list|show|edit`: the product facts (selling points, offer, banned claims) ads may use.

Errors are typed (InputError → exit 2, NotFoundError → exit 6) and printed as one line by `cutpilot.cli.main`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from cutpilot.products import Product, ProductStore

products_app = typer.Typer(
    help="Product facts the ads may state: import a YAML file, list, show, edit.", no_args_is_help=True
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _store() -> ProductStore:
    from cutpilot.products import ProductStore
    from cutpilot.settings import get_settings

    return ProductStore(get_settings())


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _find(name: str) -> Product:
    from cutpilot.errors import NotFoundError

    book = _store().book()
    product = book.get(name)
    if product is None:
        known = ", ".join(book.names()[:8]) or "none; run `cutpilot products import FILE.yaml` first"
        raise NotFoundError(f"no product named {name!r} (known: {known})")
    return product


@products_app.command("import")
def import_cmd(path: Annotated[Path, typer.Argument(help="A facts file: YAML {products: [...]} or a list.")]) -> None:
    """Import product facts, upserting by name (validated first: a bad file writes nothing)."""
    added, updated = _store().import_file(path)
    typer.echo(f"imported {added + updated} product(s) from {path}: {added} added, {updated} updated")


@products_app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """List the known products and their aliases."""
    book = _store().book()
    if as_json:
        _print_json([p.model_dump(mode="json") for p in book.products])
        return
    if not book.products:
        typer.echo("no products; import facts with `cutpilot products import FILE.yaml`")
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{len(book.products)} product(s)")
    for col in ("name", "aliases", "points zh/en", "offer", "banned"):
        t.add_column(col, overflow="fold")
    for p in book.products:
        t.add_row(p.name, ", ".join(p.aliases), f"{len(p.selling_points)}/{len(p.selling_points_en)}",
                  p.offer or p.offer_en or "", str(len(p.banned_claims)))  # fmt: skip
    Console().print(t)


@products_app.command("show")
def show_cmd(
    name: Annotated[str, typer.Argument(help="Product name or any alias (e.g. 紫熨斗).")], as_json: JsonOpt = False
) -> None:
    """Show every fact of one product."""
    product = _find(name)
    data = product.model_dump(mode="json")
    if as_json:
        _print_json(data)
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(show_header=False, title=product.name)
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    for key, value in data.items():
        if isinstance(value, list):
            value = "\n".join(value)
        elif isinstance(value, dict):
            value = json.dumps(value, ensure_ascii=False)
        t.add_row(key, "" if value is None else str(value))
    Console().print(t)


@products_app.command("edit")
def edit_cmd(
    name: Annotated[str, typer.Argument(help="Product name or any alias.")],
    sets: Annotated[
        list[str],
        typer.Option("--set", help='field=value (repeatable); lists take "a|b|c", an empty value clears'),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Correct a product's facts, e.g. --set offer_en="Free shipping" --set banned_claims="最|第一"."""
    from cutpilot.cli_args import parse_sets

    changes = parse_sets(sets)
    product = _store().edit(name, changes)
    if as_json:
        _print_json(product.model_dump(mode="json"))
    else:
        typer.echo(f"updated {product.name}: {', '.join(changes)}")


def register(app: typer.Typer) -> None:
    """Attach `products ...` to the root app."""
    app.add_typer(products_app, name="products")
