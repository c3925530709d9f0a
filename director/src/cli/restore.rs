//! `ipvsadm -R` input: one command per line, as ipvsadm's config_stream_read splits it.
//!
//! Words are separated by spaces, tabs and carriage returns; every word "ipvsadm" is dropped
//! (so `ipvsadm -A ...` lines from scripts work); lines left without words are skipped.
//! ipvsadm has no comment syntax (its '#' detection never triggers), and neither do we.

/// The argument vectors of `input`'s lines, each starting with `program` as `argv[0]`.
pub fn restore_lines(input: &str, program: &str) -> Vec<Vec<String>> {
    input
        .split('\n')
        .filter_map(|line| {
            let words: Vec<String> = line
                .split([' ', '\t', '\r'])
                .filter(|w| !w.is_empty() && *w != "ipvsadm")
                .map(str::to_owned)
                .collect();
            if words.is_empty() {
                return None;
            }
            Some(std::iter::once(program.to_owned()).chain(words).collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_config_stream_read() {
        let input = "-A -t 10.0.0.1:80 -s rr\n\n  ipvsadm\t-a -t 10.0.0.1:80\r -r 192.0.2.1 -m\nipvsadm\n-C";
        assert_eq!(
            restore_lines(input, "ipvsadm"),
            vec![
                vec!["ipvsadm", "-A", "-t", "10.0.0.1:80", "-s", "rr"],
                vec![
                    "ipvsadm",
                    "-a",
                    "-t",
                    "10.0.0.1:80",
                    "-r",
                    "192.0.2.1",
                    "-m"
                ],
                vec!["ipvsadm", "-C"],
            ]
        );
    }
}
