"""The command-line framework's own words in Chinese: help headings, the help option, the usage line
and usage errors.

Typer (from 0.26 on, with its own copy of click) has no message catalogue for these, so they are set
through what it lets an application change: rich_utils' headings, and the command classes that
`Typer(cls=...)` and `command(cls=...)` take. Errors are raised again with Chinese text naming the
same option or argument; `print_usage_error` prints them on one line, unwrapped, without a box.
"""

from __future__ import annotations

import difflib
import re

import typer
from rich.console import Console
from rich.markup import escape
from typer import rich_utils
from typer.core import TyperCommand, TyperGroup

# Typer exports BadParameter (click's, or its own copy of click's); its base class is the UsageError
# that every mistake on the command line raises.
UsageError = typer.BadParameter.__mro__[1]
assert UsageError.__name__ == "UsageError", UsageError

HELP = "显示本帮助并退出"
USAGE = "用法："

rich_utils.ARGUMENTS_PANEL_TITLE = "参数"
rich_utils.OPTIONS_PANEL_TITLE = "选项"
rich_utils.COMMANDS_PANEL_TITLE = "命令"
rich_utils.ERRORS_PANEL_TITLE = "错误"
rich_utils.ABORTED_TEXT = "已中止。"
rich_utils.DEFAULT_STRING = "[默认：{}]"
rich_utils.REQUIRED_LONG_STRING = "[必填]"
rich_utils.ENVVAR_STRING = "[环境变量：{}]"
rich_utils.DEPRECATED_STRING = "（已停用）"
rich_utils.RICH_HELP = "查看帮助：[blue]{command_path} {help_option}[/]"


def chinese(exc: Exception) -> str:
    """A usage error's message in Chinese, from what the error names (its option, its parameter)."""
    kind = type(exc).__name__
    param = getattr(exc, "param", None)
    who = (param.opts[0] if param.param_type_name == "option" else param.name) if param is not None else ""
    if kind == "NoSuchOption":
        close = sorted(getattr(exc, "possibilities", None) or [])
        return f"没有 {exc.option_name} 这个选项" + (f"，是不是 {'、'.join(close)}？" if close else "")
    if kind == "BadOptionUsage":
        return f"选项 {exc.option_name} 用法不对：它后面要跟一个值，或者它不带值"
    if kind == "MissingParameter":
        return f"缺少{'参数' if getattr(exc, 'param_type', '') == 'argument' else '选项'} {who}".rstrip()
    if kind == "BadParameter":
        return f"{who or '参数'} 的值无效（{exc.message}）"
    return exc.message  # raised by the classes below, already in Chinese


class _Chinese:
    """The help option, usage line and errors of a command or group, in Chinese."""

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.help = HELP
        return option

    def format_usage(self, ctx, formatter) -> None:
        formatter.write_usage(ctx.command_path, " ".join(self.collect_usage_pieces(ctx)), prefix=USAGE)

    def parse_args(self, ctx, args):
        try:
            rest = super().parse_args(ctx, args)
        except UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":
                raise  # the help, already shown
            raise UsageError(chinese(exc), ctx) from None
        if ctx.args and not isinstance(self, TyperGroup):
            raise UsageError(f"多余的参数：{' '.join(ctx.args)}", ctx)
        return rest


def breakable(text: str) -> str:
    """A space after Chinese clause punctuation. Typer's help table wraps a parameter's help only at
    spaces and cuts a longer run with "…", and Chinese has no spaces: without these, help is cut
    mid-sentence on an 80-column terminal."""
    return re.sub(r"([，；。、）])(?=[^\s，；。、）])", r"\1 ", text)


class Command(_Chinese, TyperCommand):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in self.params:
            if getattr(param, "help", None):
                param.help = breakable(param.help)
        # Extra arguments are left in ctx.args, to be refused in Chinese by parse_args.
        self.context_settings = {"allow_extra_args": True, **(self.context_settings or {})}


class Group(_Chinese, TyperGroup):
    """An unknown command is named, with the closest ones."""

    def resolve_command(self, ctx, args):
        if args and not args[0].startswith("-") and self.get_command(ctx, args[0]) is None:
            close = difflib.get_close_matches(args[0], self.list_commands(ctx), n=3)
            raise UsageError(f"没有 {args[0]} 这个命令" + (f"，是不是 {'、'.join(close)}？" if close else ""), ctx)
        return super().resolve_command(ctx, args)


def print_usage_error(exc: Exception, console: Console) -> None:
    """`用法错误：…`, the usage line and where the help is, on as few lines as the text needs."""
    ctx = getattr(exc, "ctx", None)
    console.print(f"[red]用法错误：[/red]{escape(chinese(exc))}", soft_wrap=True)
    if ctx is not None:
        console.print(escape(ctx.get_usage()), soft_wrap=True, highlight=False)
        console.print(f"查看帮助：{ctx.command_path} --help", soft_wrap=True, highlight=False)
