"""Load YAML safely into pydantic models; every error names the file, line and column."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer, MaxDepthExceededError
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, SequenceNode

# Bounds on what one YAML file may hold. Rule, layout and job files are a few kilobytes; aliases
# (`*name`) repeat a node without copying it, so a small file of nested aliases would otherwise
# expand to billions of nodes once read.
MAX_YAML_BYTES = 1_000_000
MAX_ALIASED_NODES = 100_000  # nodes repeated by aliases, counted as if copied out
MAX_DEPTH = 100

M = TypeVar("M", bound=BaseModel)


class YamlFileError(Exception):
    """A YAML file that does not load or does not validate; `str()` is `file:line:col: message`."""

    def __init__(self, path: Path, line: int, col: int, message: str):
        self.path, self.line, self.col, self.message = path, line, col, message
        super().__init__(f"{path}:{line}:{col}: {message}")


class _Refused(MarkedYAMLError):
    pass


class _BoundedComposer(Composer):
    """Counts what aliases expand to and refuses a document past `MAX_ALIASED_NODES`, or an alias
    inside the node it names (a structure that contains itself)."""

    def compose_document(self) -> Any:
        self.expanded, self.sizes = 0, {}
        return super().compose_document()

    def compose_node(self, parent: Any, index: Any) -> Any:
        alias = self.parser.peek_event() if self.parser.check_event(AliasEvent) else None
        node = super().compose_node(parent, index)
        if alias is not None:
            if node.end_mark is None:  # still being composed: the alias is inside its own anchor
                raise _Refused(None, None, f"别名 *{alias.anchor} 位于它所指的节点之内（结构包含自身），拒绝读取", alias.start_mark)
            self.expanded += self._size(node)
            if self.expanded > MAX_ALIASED_NODES:
                raise _Refused(None, None, f"别名 *{alias.anchor} 展开后超过 {MAX_ALIASED_NODES} 个节点，疑为“YAML 炸弹”，拒绝读取", alias.start_mark)
        return node

    def _size(self, node: Any) -> int:
        """Nodes under `node`, aliases counted as copies (memoised: a node is complete when aliased)."""
        if id(node) not in self.sizes:
            if isinstance(node, MappingNode):
                children = [n for pair in node.value for n in pair]
            else:
                children = node.value if isinstance(node, SequenceNode) else []
            self.sizes[id(node)] = 1 + sum(self._size(child) for child in children)
        return self.sizes[id(node)]


def read_yaml(path: Path) -> Any:
    """Parse with ruamel's round-trip loader, which keeps positions and builds no Python objects;
    oversized files, deep nesting and aliases that expand too far are refused with their position."""
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise YamlFileError(path, 1, 1, f"文件过大（{size} 字节，上限 {MAX_YAML_BYTES}），拒绝读取")
        yaml = YAML(typ="rt")
        yaml.Composer = _BoundedComposer
        yaml.max_depth = MAX_DEPTH
        return yaml.load(path.read_text(encoding="utf-8"))
    except (_Refused, MaxDepthExceededError) as exc:
        problem = exc.problem if isinstance(exc, _Refused) else f"嵌套超过 {MAX_DEPTH} 层，拒绝读取"
        raise YamlFileError(path, exc.problem_mark.line + 1, exc.problem_mark.column + 1, problem) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlFileError(path, line, col, f"YAML 语法错误: {exc.problem or exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlFileError(path, 1, 1, f"无法读取: {exc}") from None


def position(node: Any, loc: tuple[Any, ...]) -> tuple[int, int]:
    """The line and column (1-based) of the node at `loc` inside a ruamel document."""
    line, col = 1, 1
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            line, col = node.lc.key(key)[0] + 1, node.lc.key(key)[1] + 1
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and key < len(node):
            line, col = node.lc.item(key)[0] + 1, node.lc.item(key)[1] + 1
            node = node[key]
        else:
            break
    return line, col


def value_position(path: Path, node: Any, loc: tuple[Any, ...], offset: int = 0) -> tuple[int, int]:
    """The line and column (1-based) of a character inside the scalar at `loc`: `offset` characters
    into its text (a name inside an expression, a `{placeholder}` inside a message)."""
    *parents, last = loc
    for key in parents:
        if isinstance(node, (CommentedMap, CommentedSeq)) and (key in node if isinstance(node, CommentedMap) else key < len(node)):
            node = node[key]
        else:
            return position(node, ())
    try:
        line, col = node.lc.value(last) if isinstance(node, CommentedMap) else node.lc.item(last)
    except (KeyError, IndexError, TypeError):
        return position(node, (last,))
    text = path.read_text(encoding="utf-8").splitlines()[line] if path.is_file() else ""
    quoted = 1 if col < len(text) and text[col] in "\"'" else 0
    return line + 1, col + 1 + quoted + offset


# What pydantic says, as a rule author reads it (pydantic's own messages are in English).
_MESSAGES = {
    "missing": "缺少必填项",
    "extra_forbidden": "不认识的参数",
    "literal_error": "取值应为 {expected}",
    "union_tag_invalid": "未知的种类 {tag}（可用：{expected_tags}）",
    "union_tag_not_found": "缺少 kind（检查的种类）",
    "string_type": "应为文字",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "bool_type": "应为 true 或 false",
    "list_type": "应为列表",
    "dict_type": "应为映射（键: 值）",
    "string_pattern_mismatch": "格式不对（应符合 {pattern}）",
    "model_type": "应为映射（键: 值）",
}


def pydantic_errors(path: Path, node: Any, exc: ValidationError, tags: frozenset[str] = frozenset()) -> list[YamlFileError]:
    """Every error pydantic found in `node`, each at its position, in Chinese where we know the kind.
    `tags` are the discriminator values pydantic puts into locations (check.identity.expr)."""
    out = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in tags))
        if err["type"] == "union_tag_invalid":  # point at the tag itself (`kind: negatoin`)
            loc += (str(err["ctx"]["discriminator"]).strip("'"),)
        line, col = position(node, loc)
        where = ".".join(str(p) for p in loc) or "(顶层)"
        context = {k: str(v).replace("'", "") for k, v in (err.get("ctx") or {}).items()}
        try:
            message = _MESSAGES[err["type"]].format(**context)
        except KeyError:
            message = err["msg"]
        out.append(YamlFileError(path, line, col, f"{where}: {message}"))
    return out


def plain(node: Any) -> Any:
    """ruamel containers → plain dicts and lists (pydantic wants plain data)."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node


def validate(path: Path, node: Any, model: type[M]) -> M:
    """Validate one YAML node into `model`; the first error is raised with its position."""
    try:
        return model.model_validate(plain(node))
    except ValidationError as exc:
        raise pydantic_errors(path, node, exc)[0] from None


def load_yaml_model(path: Path, model: type[M]) -> M:
    return validate(path, read_yaml(path), model)
