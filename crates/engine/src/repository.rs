//! Which git repository a `configRepository` names, however it is spelled.
//!
//! Konvoy clones the repository of an addons entry with git, which takes the host in any case,
//! a `.git` suffix, trailing slashes, user info, the scp form (`git@host:owner/repo`), a
//! go-getter `git::` prefix, and a ref after `#` or in `?ref=`; GitHub also takes the path in any
//! case. A case-sensitive, end-anchored match of the canonical spelling therefore misses
//! `GitHub.com/Mesosphere/Kubernetes-Base-Addons.git#stable-1.18-3.0.0`, and the ref of such an
//! entry was checked by nothing (issue 28, path 4). The identity here is the path's segments,
//! compared without case and with percent-escapes decoded; the ref the URL carries is returned
//! beside it, so that the checks can use it or refuse a conflict.
//!
//! Nothing here allocates: the built-in targets test every addons entry of every evaluation with
//! it, and an object with nothing to report must cost no allocation (tests/engine_allocs.rs).

/// A repository URL taken apart, borrowing from the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepoUrl<'a> {
    /// Host and path, without scheme, user info, query and fragment.
    path: &'a str,
    /// The ref after `#`, if any.
    pub fragment: Option<&'a str>,
    /// The value of a `ref=` query parameter, if any.
    pub query_ref: Option<&'a str>,
}

impl<'a> RepoUrl<'a> {
    pub fn parse(raw: &'a str) -> RepoUrl<'a> {
        let s = raw.trim();
        let s = strip_prefix_ignore_case(s, "git::").unwrap_or(s);
        let (s, fragment) = match s.split_once('#') {
            Some((s, f)) => (s, Some(f.trim()).filter(|f| !f.is_empty())),
            None => (s, None),
        };
        let (s, query) = match s.split_once('?') {
            Some((s, q)) => (s, Some(q)),
            None => (s, None),
        };
        let query_ref = query.and_then(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("ref"))
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())
        });
        let s = s.split_once("://").map_or(s, |(_, rest)| rest);
        // User info (`git@`, `user:token@`) belongs to the host part only.
        let host_end = s.find('/').unwrap_or(s.len());
        let s = match s[..host_end].rfind('@') {
            Some(at) => &s[at + 1..],
            None => s,
        };
        RepoUrl {
            path: s,
            fragment,
            query_ref,
        }
    }

    /// The refs the URL names, in the order git would meet them (a fragment, then `?ref=`).
    pub fn refs(&self) -> impl Iterator<Item = &'a str> {
        self.fragment.into_iter().chain(self.query_ref)
    }

    /// Whether the URL's path ends with the segments of `name` (`kubernetes-base-addons`, or
    /// `mesosphere/kubernetes-base-addons` to pin the owner too), compared without case and with
    /// `.git` and slashes ignored. A name without segments names nothing.
    pub fn names(&self, name: &str) -> bool {
        let mut want = segments(name).rev().peekable();
        if want.peek().is_none() {
            return false;
        }
        let mut have = segments(self.path).rev();
        want.all(|w| have.next().is_some_and(|h| same_segment(h, w)))
    }
}

/// Whether `raw` names a repository called `name` (see [`RepoUrl::names`]).
pub fn names(raw: &str, name: &str) -> bool {
    RepoUrl::parse(raw).names(name)
}

fn strip_prefix_ignore_case<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// The non-empty segments of a path, split at `/` (and the `:` of an scp-style host or a port),
/// the last one without a `.git` suffix.
fn segments(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    let path = path.trim().trim_end_matches('/');
    let path = match path.len().checked_sub(4).and_then(|i| path.get(i..)) {
        Some(tail) if tail.eq_ignore_ascii_case(".git") => &path[..path.len() - 4],
        _ => path,
    };
    path.split(['/', ':'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Two segments equal without ASCII case, percent-escapes decoded on both sides.
fn same_segment(a: &str, b: &str) -> bool {
    let (mut a, mut b) = (decoded(a), decoded(b));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(&y) => {}
            _ => return false,
        }
    }
}

/// The bytes of `s` with `%XX` escapes decoded; a `%` not followed by two hex digits is itself.
fn decoded(s: &str) -> impl Iterator<Item = u8> + '_ {
    let b = s.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        let c = *b.get(i)?;
        if c == b'%'
            && let (Some(h), Some(l)) = (b.get(i + 1).and_then(hex), b.get(i + 2).and_then(hex))
        {
            i += 3;
            return Some(h << 4 | l);
        }
        i += 1;
        Some(c)
    })
}

fn hex(c: &u8) -> Option<u8> {
    (*c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KBA: &str = "kubernetes-base-addons";

    #[test]
    #[expect(
        clippy::too_many_lines,
        reason = "one row per spelling of the repository URL, a table read top to bottom"
    )]
    fn every_respelling_of_the_repository_is_recognised() {
        for (raw, fragment, query_ref) in [
            (
                "https://github.com/mesosphere/kubernetes-base-addons",
                None,
                None,
            ),
            (
                "https://github.com/Mesosphere/Kubernetes-Base-Addons",
                None,
                None,
            ),
            ("Mesosphere/Kubernetes-Base-Addons", None, None),
            ("kubernetes-base-addons", None, None),
            (
                "https://GitHub.com/mesosphere/kubernetes-base-addons",
                None,
                None,
            ),
            (
                "HTTPS://GITHUB.COM/MESOSPHERE/KUBERNETES-BASE-ADDONS.GIT",
                None,
                None,
            ),
            (
                "https://github.com/mesosphere/kubernetes-base-addons.git",
                None,
                None,
            ),
            (
                "https://github.com/mesosphere/kubernetes-base-addons/",
                None,
                None,
            ),
            (
                "https://github.com/mesosphere/kubernetes-base-addons.git/",
                None,
                None,
            ),
            (
                "https://github.com/mesosphere/kubernetes-base-addons//",
                None,
                None,
            ),
            (
                "https://github.com//mesosphere//kubernetes-base-addons",
                None,
                None,
            ),
            (
                " https://github.com/mesosphere/kubernetes-base-addons\n",
                None,
                None,
            ),
            (
                "https://github.com/mesosphere/kubernetes-base-addons#stable-1.18-3.0.0",
                Some("stable-1.18-3.0.0"),
                None,
            ),
            (
                "https://github.com/mesosphere/kubernetes-base-addons.git#stable-1.18-3.0.0",
                Some("stable-1.18-3.0.0"),
                None,
            ),
            (
                "https://github.com/mesosphere/kubernetes-base-addons?ref=stable-1.18-3.0.0",
                None,
                Some("stable-1.18-3.0.0"),
            ),
            (
                "git::https://github.com/mesosphere/kubernetes-base-addons.git?depth=1&REF=stable-1.18-3.0.0",
                None,
                Some("stable-1.18-3.0.0"),
            ),
            (
                "git@github.com:mesosphere/kubernetes-base-addons.git",
                None,
                None,
            ),
            (
                "ssh://git@github.com:22/mesosphere/kubernetes-base-addons",
                None,
                None,
            ),
            (
                "https://user:token@github.com/mesosphere/kubernetes-base-addons",
                None,
                None,
            ),
            (
                "https://github.com/mesosphere/kubernetes%2Dbase%2daddons",
                None,
                None,
            ),
            (
                "https://git.internal.example/mirror/kubernetes-base-addons",
                None,
                None,
            ),
            (
                "https://github.com/mesosphere/kubernetes-base-addons#",
                None,
                None,
            ),
        ] {
            let url = RepoUrl::parse(raw);
            assert!(url.names(KBA), "{raw:?} is KBA");
            assert_eq!(url.fragment, fragment, "{raw:?}");
            assert_eq!(url.query_ref, query_ref, "{raw:?}");
        }
        // The owner can be pinned, in any spelling on either side.
        for raw in [
            "https://GitHub.com/Mesosphere/Kubernetes-Base-Addons.git#x",
            "git@github.com:mesosphere/kubernetes-base-addons",
        ] {
            assert!(names(raw, "mesosphere/kubernetes-base-addons"), "{raw}");
            assert!(
                names(raw, "MESOSPHERE/Kubernetes-Base-Addons.git/"),
                "{raw}"
            );
            assert!(
                names(raw, "github.com/mesosphere/kubernetes-base-addons"),
                "{raw}"
            );
            assert!(!names(raw, "acme/kubernetes-base-addons"), "{raw}");
        }
    }

    #[test]
    fn a_foreign_repository_is_not() {
        for raw in [
            "",
            "/",
            ".git",
            "https://github.com/mesosphere/kubeaddons-kommander",
            "https://github.com/mesosphere/kubeaddons-dispatch",
            "https://github.com/mesosphere/kubernetes-base-addons-fork",
            "https://github.com/acme/my-kubernetes-base-addons",
            "https://github.com/mesosphere/kubernetes-base-addons/charts",
            "https://github.com/mesosphere/kubernetes-base-addons.gitx",
            "https://github.com/kubernetes-base-addons%2Fx",
            "kubernetes-base-addonsXgit",
            "x\nkubernetes-base-addons",
        ] {
            assert!(!names(raw, KBA), "{raw:?} is not KBA");
        }
        assert!(!names(KBA, ""), "an empty name names nothing");
        assert!(!names(KBA, "/.git"), "nor does one of only separators");
        assert!(names(
            "https://github.com/mesosphere/kubeaddons-kommander.git",
            "kubeaddons-kommander"
        ));
    }

    #[test]
    fn refs_come_in_order_and_blank_ones_are_none() {
        let u = RepoUrl::parse("https://h/o/r?ref=b#a");
        assert_eq!(u.refs().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(RepoUrl::parse("https://h/o/r?ref=&x=1").query_ref, None);
        assert_eq!(RepoUrl::parse("https://h/o/r?reference=x").query_ref, None);
    }
}
