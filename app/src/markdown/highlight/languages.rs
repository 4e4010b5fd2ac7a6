//! The word lists and lexical rules of the languages the generic code lexer handles.

use super::Language;
use super::code::Syntax;

const RUST: Syntax = Syntax {
    keywords: "as async await break const continue crate dyn else enum extern fn for if impl \
        in let loop match mod move mut pub ref return self Self static struct super \
        trait type unsafe use where while yield",
    literals: "true false None Some Ok Err",
    line_comments: &["//"],
    block_comment: Some(("/*", "*/")),
    quotes: &['"', '\''],
    char_literals: true,
    capitalised_types: true,
    ..Syntax::EMPTY
};

/// JavaScript and TypeScript share one list: TypeScript's extra words are rare
/// enough as names in JavaScript that colouring them there costs nothing.
const JAVASCRIPT: Syntax = Syntax {
    keywords: "abstract as async await break case catch class const continue debugger declare \
        default delete do else enum export extends finally for from function get if \
        implements import in instanceof interface keyof let namespace new of private \
        protected public readonly return set static super switch this throw try type \
        typeof var void while with yield",
    literals: "true false null undefined NaN Infinity",
    line_comments: &["//"],
    block_comment: Some(("/*", "*/")),
    quotes: &['"', '\'', '`'],
    capitalised_types: true,
    ..Syntax::EMPTY
};

const PYTHON: Syntax = Syntax {
    keywords: "and as assert async await break class continue def del elif else except \
        finally for from global if import in is lambda match case nonlocal not or pass \
        raise return try while with yield self",
    literals: "True False None",
    line_comments: &["#"],
    quotes: &['"', '\''],
    triple_quotes: true,
    capitalised_types: true,
    ..Syntax::EMPTY
};

const SHELL: Syntax = Syntax {
    keywords: "if then else elif fi for while until do done case esac in function return \
        export local readonly set unset source exit cd echo sudo",
    literals: "true false",
    line_comments: &["#"],
    quotes: &['"', '\''],
    comment_after_space: true,
    variables: true,
    shebang: true,
    ..Syntax::EMPTY
};

const JSON: Syntax = Syntax {
    literals: "true false null",
    line_comments: &["//"],
    block_comment: Some(("/*", "*/")),
    quotes: &['"'],
    string_keys: true,
    ..Syntax::EMPTY
};

const TOML: Syntax = Syntax {
    literals: "true false",
    line_comments: &["#"],
    quotes: &['"', '\''],
    triple_quotes: true,
    keys: Some('='),
    sections: true,
    ..Syntax::EMPTY
};

const YAML: Syntax = Syntax {
    literals: "true false null yes no on off",
    line_comments: &["#"],
    quotes: &['"', '\''],
    keys: Some(':'),
    comment_after_space: true,
    ..Syntax::EMPTY
};

const GO: Syntax = Syntax {
    keywords: "break case chan const continue default defer else fallthrough for func go goto \
        if import interface map package range return select struct switch type var",
    literals: "true false nil iota",
    line_comments: &["//"],
    block_comment: Some(("/*", "*/")),
    quotes: &['"', '\'', '`'],
    capitalised_types: true,
    ..Syntax::EMPTY
};

/// The rules for `language`, which must be one the generic lexer handles; the
/// markup languages and diffs have lexers of their own.
pub fn syntax(language: Language) -> &'static Syntax {
    match language {
        Language::Rust => &RUST,
        Language::JavaScript | Language::TypeScript => &JAVASCRIPT,
        Language::Python => &PYTHON,
        Language::Shell => &SHELL,
        Language::Json => &JSON,
        Language::Toml => &TOML,
        Language::Yaml => &YAML,
        Language::Go => &GO,
        Language::Html | Language::Css | Language::Diff => &Syntax::EMPTY,
    }
}
