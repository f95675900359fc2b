from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from customers.importer import (
    CREATE,
    REJECTED,
    UNCHANGED,
    UPDATE,
    ImportFileError,
    customer_import_bytes,
    customer_import_record,
)


class Command(BaseCommand):
    help = "Importa clientes y sus suscripciones desde un CSV (formato: /customers/import/)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--dry-run", action="store_true", help="Muestra lo que haría sin guardar nada."
        )

    def handle(self, *args, file: Path, dry_run: bool, **options):
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"No se puede leer {file}: {exc.strerror}") from exc
        try:
            report = customer_import_bytes(data=data, dry_run=dry_run)
        except ImportFileError as exc:
            raise CommandError(str(exc)) from exc
        if not dry_run:
            customer_import_record(report=report, filename=file.name)
        counts = report.counts
        self.stdout.write(
            ("Simulación (no se guardó nada): " if dry_run else "Importación: ")
            + f"{counts[CREATE]} nuevos, {counts[UPDATE]} actualizados, "
            f"{counts[UNCHANGED]} sin cambios, {counts[REJECTED]} rechazados."
        )
        for row in report.rejected:
            self.stdout.write(f"  línea {row.line}: {row.reason}")
