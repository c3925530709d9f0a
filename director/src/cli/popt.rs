//! A command-line scanner with popt's rules, as ipvsadm 1.31 uses them.
//!
//! popt differs from getopt in ways scripts depend on: options and non-options may be mixed
//! (non-options are kept as "leftovers"), `--` makes everything after it a leftover, a short
//! option's argument may be glued (`-srr`, `-s=rr`), short options combine (`-Ln`), long
//! options take `--name=value` or `--name value`, long names are never abbreviated, a
//! required argument is taken from the next word even if it starts with `-`, and an optional
//! argument (`-p [timeout]`) is taken only from a next word that does not start with `-`.

/// Whether an option takes an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArgKind {
    /// A flag.
    None,
    /// Always takes an argument.
    Required,
    /// Takes the next word only if it does not start with `-` (POPT_ARGFLAG_OPTIONAL).
    Optional,
}

/// One entry of an option table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OptSpec<T> {
    /// Long name, without the dashes.
    pub long: &'static str,
    /// Short name, if any.
    pub short: Option<u8>,
    /// Argument kind.
    pub arg: ArgKind,
    /// What the caller gets back.
    pub tag: T,
}

/// popt's error codes that ipvsadm can meet, with `poptStrerror`'s text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoptError {
    /// POPT_ERROR_NOARG.
    MissingArgument,
    /// POPT_ERROR_UNWANTEDARG.
    UnwantedArgument,
    /// POPT_ERROR_BADOPT.
    UnknownOption,
}

impl PoptError {
    /// `poptStrerror` text.
    pub fn text(self) -> &'static str {
        match self {
            PoptError::MissingArgument => "missing argument",
            PoptError::UnwantedArgument => "option does not take an argument",
            PoptError::UnknownOption => "unknown option",
        }
    }
}

/// The scanner state over `argv` (argv[0] is the program name and is skipped).
pub(crate) struct Popt<'a, T: Copy> {
    table: &'a [OptSpec<T>],
    argv: &'a [String],
    next: usize,
    /// Rest of a bundle of short options: (argv index, byte offset).
    char_arg: Option<(usize, usize)>,
    rest_leftover: bool,
    leftovers: Vec<String>,
    leftover_pos: usize,
}

impl<'a, T: Copy> Popt<'a, T> {
    /// A scanner over `argv` with `table`.
    pub fn new(table: &'a [OptSpec<T>], argv: &'a [String]) -> Self {
        Popt {
            table,
            argv,
            next: 1,
            char_arg: None,
            rest_leftover: false,
            leftovers: Vec::new(),
            leftover_pos: 0,
        }
    }

    /// The argv word popt blames for an error (`poptBadOption`): the last word consumed.
    pub fn bad_option(&self) -> &'a str {
        self.argv
            .get(self.next.saturating_sub(1))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// The next leftover (non-option) word, in order (`poptGetArg`).
    pub fn next_leftover(&mut self) -> Option<String> {
        let word = self.leftovers.get(self.leftover_pos).cloned();
        if word.is_some() {
            self.leftover_pos += 1;
        }
        word
    }

    /// The next option and its argument; `None` when the words are exhausted.
    pub fn next_opt(&mut self) -> Option<Result<(T, Option<String>), PoptError>> {
        loop {
            if let Some((idx, off)) = self.char_arg.take() {
                return Some(self.short_opt(idx, off));
            }
            let word = self.argv.get(self.next)?;
            self.next += 1;
            if self.rest_leftover || !word.starts_with('-') || word == "-" {
                self.leftovers.push(word.clone());
                continue;
            }
            if word == "--" {
                self.rest_leftover = true;
                continue;
            }
            if let Some(body) = word.strip_prefix("--") {
                return Some(self.long_opt(body));
            }
            // A single dash: popt would try a ONEDASH long option first; ipvsadm has none,
            // so the word is a bundle of short options.
            return Some(self.short_opt(self.next - 1, 1));
        }
    }

    fn long_opt(&mut self, body: &str) -> Result<(T, Option<String>), PoptError> {
        let (name, inline) = match body.find('=') {
            Some(eq) => (&body[..eq], Some(&body[eq + 1..])),
            None => (body, None),
        };
        let spec = self
            .table
            .iter()
            .find(|s| s.long == name)
            .ok_or(PoptError::UnknownOption)?;
        self.take_arg(spec, inline.map(str::to_owned))
    }

    fn short_opt(&mut self, idx: usize, off: usize) -> Result<(T, Option<String>), PoptError> {
        let word = &self.argv[idx];
        let c = word.as_bytes()[off];
        let spec = self
            .table
            .iter()
            .find(|s| s.short == Some(c))
            .ok_or(PoptError::UnknownOption)?;
        let rest = off + 1;
        if rest < word.len() {
            self.char_arg = Some((idx, rest));
        }
        match spec.arg {
            ArgKind::None => {
                if word.as_bytes().get(rest) == Some(&b'=') {
                    return Err(PoptError::UnwantedArgument);
                }
                Ok((spec.tag, None))
            }
            _ if rest < word.len() => {
                // A glued argument: `-srr` or `-s=rr`.
                self.char_arg = None;
                let glued = &word[rest..];
                let glued = glued.strip_prefix('=').unwrap_or(glued);
                Ok((spec.tag, Some(glued.to_owned())))
            }
            _ => self.take_arg(spec, None),
        }
    }

    fn take_arg(
        &mut self,
        spec: &OptSpec<T>,
        inline: Option<String>,
    ) -> Result<(T, Option<String>), PoptError> {
        match spec.arg {
            ArgKind::None if inline.is_some() => Err(PoptError::UnwantedArgument),
            ArgKind::None => Ok((spec.tag, None)),
            _ if inline.is_some() => Ok((spec.tag, inline)),
            kind => match self.argv.get(self.next) {
                None if kind == ArgKind::Optional => Ok((spec.tag, None)),
                None => Err(PoptError::MissingArgument),
                Some(w) if kind == ArgKind::Optional && w.starts_with('-') => Ok((spec.tag, None)),
                Some(w) => {
                    self.next += 1;
                    Ok((spec.tag, Some(w.clone())))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[OptSpec<char>] = &[
        OptSpec {
            long: "list",
            short: Some(b'L'),
            arg: ArgKind::None,
            tag: 'L',
        },
        OptSpec {
            long: "numeric",
            short: Some(b'n'),
            arg: ArgKind::None,
            tag: 'n',
        },
        OptSpec {
            long: "scheduler",
            short: Some(b's'),
            arg: ArgKind::Required,
            tag: 's',
        },
        OptSpec {
            long: "persistent",
            short: Some(b'p'),
            arg: ArgKind::Optional,
            tag: 'p',
        },
    ];

    fn argv(words: &[&str]) -> Vec<String> {
        std::iter::once("prog")
            .chain(words.iter().copied())
            .map(String::from)
            .collect()
    }

    /// Options seen (or the error that stopped the scan) and the leftover arguments.
    type Scanned = (Vec<Result<(char, Option<String>), PoptError>>, Vec<String>);

    fn scan(words: &[&str]) -> Scanned {
        let args = argv(words);
        let mut p = Popt::new(TABLE, &args);
        let mut out = Vec::new();
        while let Some(r) = p.next_opt() {
            let stop = r.is_err();
            out.push(r);
            if stop {
                break;
            }
        }
        let mut left = Vec::new();
        while let Some(l) = p.next_leftover() {
            left.push(l);
        }
        (out, left)
    }

    fn ok(c: char, a: Option<&str>) -> Result<(char, Option<String>), PoptError> {
        Ok((c, a.map(String::from)))
    }

    #[test]
    fn bundles_and_glued_arguments() {
        let (o, _) = scan(&["-Ln", "-srr", "-s=wlc", "-ps", "x"]);
        assert_eq!(
            o,
            vec![
                ok('L', None),
                ok('n', None),
                ok('s', Some("rr")),
                ok('s', Some("wlc")),
                ok('p', Some("s")),
            ]
        );
    }

    #[test]
    fn long_forms_and_required_argument_takes_dash_words() {
        let (o, _) = scan(&["--scheduler=rr", "--scheduler", "-n", "--list"]);
        assert_eq!(
            o,
            vec![ok('s', Some("rr")), ok('s', Some("-n")), ok('L', None)]
        );
    }

    #[test]
    fn optional_argument_skips_dash_words() {
        let (o, _) = scan(&["-p", "-n", "-p", "300", "--persistent"]);
        assert_eq!(
            o,
            vec![
                ok('p', None),
                ok('n', None),
                ok('p', Some("300")),
                ok('p', None)
            ]
        );
    }

    #[test]
    fn leftovers_and_double_dash() {
        let (o, left) = scan(&["a", "-L", "-", "b", "--", "-n", "c"]);
        assert_eq!(o, vec![ok('L', None)]);
        assert_eq!(left, vec!["a", "-", "b", "-n", "c"]);
    }

    #[test]
    fn errors() {
        assert_eq!(scan(&["-q"]).0, vec![Err(PoptError::UnknownOption)]);
        assert_eq!(scan(&["--lis"]).0, vec![Err(PoptError::UnknownOption)]);
        assert_eq!(
            scan(&["--list=x"]).0,
            vec![Err(PoptError::UnwantedArgument)]
        );
        assert_eq!(scan(&["-L=x"]).0, vec![Err(PoptError::UnwantedArgument)]);
        assert_eq!(scan(&["-s"]).0, vec![Err(PoptError::MissingArgument)]);
        let args = argv(&["-L", "-nq"]);
        let mut p = Popt::new(TABLE, &args);
        assert_eq!(p.next_opt(), Some(ok('L', None)));
        assert_eq!(p.next_opt(), Some(ok('n', None)));
        assert_eq!(p.next_opt(), Some(Err(PoptError::UnknownOption)));
        assert_eq!(p.bad_option(), "-nq");
    }
}
