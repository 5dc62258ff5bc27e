//! Where wagate may send requests on a user's behalf. Unless private targets are allowed, a
//! URL must not reach loopback, private, link-local or other non-public addresses, so that a
//! webhook cannot be pointed at the inside of the network wagate runs in. URLs are checked
//! when they are registered, and every connection resolves names through [`PublicOnly`], so
//! a name that later resolves to a private address (DNS rebinding) is refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// Why a URL is not an acceptable target.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum TargetError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} is a loopback, private or link-local address")]
    Private(String),
    #[error("{0} does not resolve")]
    Unresolvable(String),
}

/// Whether an address is reachable on the public internet.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(ip),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24; benchmarking, 198.18.0.0/15; reserved, 240.0.0.0/4.
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local fc00::/7, link-local fe80::/10, documentation 2001:db8::/32.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first == 0x2001 && ip.segments()[1] == 0x0db8))
}

/// Parses and checks a target URL: http or https with a host, and (unless `allow_private`)
/// one that resolves only to public addresses.
pub(crate) async fn check_url(raw: &str, allow_private: bool) -> Result<Url, TargetError> {
    let url = Url::parse(raw).map_err(|e| TargetError::Invalid(format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TargetError::Invalid("must be an http or https URL".into()));
    }
    let Some(host) = url.host() else {
        return Err(TargetError::Invalid("must name a host".into()));
    };
    if allow_private {
        return Ok(url);
    }
    let addrs: Vec<IpAddr> = match host {
        url::Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
        url::Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
        url::Host::Domain(name) => {
            let port = url.port_or_known_default().unwrap_or(443);
            tokio::net::lookup_host((name, port))
                .await
                .map_err(|_| TargetError::Unresolvable(name.to_owned()))?
                .map(|addr| addr.ip())
                .collect()
        }
    };
    if addrs.is_empty() {
        return Err(TargetError::Unresolvable(host.to_string()));
    }
    if let Some(private) = addrs.iter().find(|ip| !is_public(**ip)) {
        return Err(TargetError::Private(private.to_string()));
    }
    Ok(url)
}

/// Whether a URL names a non-public IP address directly (such a URL never reaches the resolver).
pub(crate) fn names_private_ip(url: &str) -> bool {
    match Url::parse(url).ok().and_then(|url| url.host().map(|host| host.to_owned())) {
        Some(url::Host::Ipv4(ip)) => !is_public(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => !is_public(IpAddr::V6(ip)),
        _ => false,
    }
}

/// A resolver that hands reqwest only public addresses.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| is_public(addr.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(TargetError::Private(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:1.1.1.1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn urls_are_checked_unless_private_targets_are_allowed() {
        for url in ["http://127.0.0.1:9/hook", "http://localhost/hook", "http://[::1]/", "https://10.0.0.5/x"]
        {
            assert!(matches!(check_url(url, false).await, Err(TargetError::Private(_))), "{url}");
            assert!(check_url(url, true).await.is_ok(), "{url}");
        }
        assert!(matches!(check_url("ftp://example.com/", true).await, Err(TargetError::Invalid(_))));
        assert!(matches!(check_url("not a url", true).await, Err(TargetError::Invalid(_))));
        assert_eq!(
            check_url("https://93.184.216.34/hook", false).await.unwrap().as_str(),
            "https://93.184.216.34/hook"
        );
        assert!(names_private_ip("http://10.0.0.1/x") && names_private_ip("http://[::1]:80/"));
        assert!(!names_private_ip("https://8.8.8.8/") && !names_private_ip("https://localhost/"));
    }

    #[tokio::test]
    async fn the_resolver_hands_out_no_private_address() {
        let refused = PublicOnly.resolve("localhost".parse().unwrap()).await;
        assert!(refused.is_err_and(|e| e.to_string().contains("private")));
    }
}
