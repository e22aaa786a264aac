"""Classical nucleation theory: critical radius r* (Å) and size n* (atoms).

Defaults are the paper's values for Cu (Mishin EAM) at 420 K undercooling.
"""

from __future__ import annotations

from atominfo.cli import options


def add_arguments(parser) -> None:
    t = options.typed
    parser.add_argument(
        "--gamma",
        type=t("gamma", "--gamma"),
        default=0.177,
        help="Solid-liquid interface energy, J/m^2.",
    )
    parser.add_argument(
        "--tm",
        type=t("melting_temperature", "--tm"),
        default=1323.0,
        help="Melting temperature, K.",
    )
    parser.add_argument(
        "--latent-heat",
        type=t("latent_heat", "--latent-heat"),
        default=11.99,
        help="Latent heat of melting, kJ/mol.",
    )
    parser.add_argument(
        "--undercooling",
        type=t("undercooling", "--undercooling"),
        default=420.0,
        help="T_m - T, K (less than T_m).",
    )
    parser.add_argument(
        "--volume",
        type=t("atomic_volume", "--volume"),
        default=12.893,
        help="Volume per atom of the solid, Å^3.",
    )
    options.add_output(parser, quiet=False)


def run(args) -> None:
    from atominfo.cli.report import print_json, say
    from atominfo.workflows.cnt import critical_nucleus

    result = critical_nucleus(args.gamma, args.tm, args.latent_heat, args.undercooling, args.volume)
    if args.json:
        print_json(result)
        return
    say(
        f"r* = {result.r_star:.3f} Å, n* = {result.n_star:.1f} atoms (gamma "
        f"{args.gamma} J/m^2, T_m {args.tm} K, latent heat {args.latent_heat} kJ/mol, "
        f"undercooling {args.undercooling} K, {args.volume} Å^3/atom)"
    )
