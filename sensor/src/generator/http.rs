//! HTTP/1.1 requests and response heads as TCP payloads.

/// Which request a client sends.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    /// `GET` most of the time, `POST` with a small form body otherwise.
    pub(crate) post: bool,
    pub(crate) host: &'a str,
    /// The server port; anything but 80 is written into the `Host` header.
    pub(crate) port: u16,
    pub(crate) path: &'a str,
    pub(crate) user_agent: &'a str,
}

const POST_BODY: &[u8] = b"user=guest&action=update&token=3f9a1c&lang=en";

pub(crate) fn request(out: &mut Vec<u8>, r: &Request<'_>) {
    out.extend_from_slice(if r.post { b"POST " } else { b"GET " });
    out.extend_from_slice(r.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(r.host.as_bytes());
    if r.port != 80 {
        out.push(b':');
        out.extend_from_slice(r.port.to_string().as_bytes());
    }
    out.extend_from_slice(b"\r\nUser-Agent: ");
    out.extend_from_slice(r.user_agent.as_bytes());
    out.extend_from_slice(
        b"\r\nAccept: */*\r\nAccept-Language: en-US,en;q=0.9\r\nAccept-Encoding: gzip, deflate\r\n",
    );
    if r.post {
        out.extend_from_slice(
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ",
        );
        out.extend_from_slice(POST_BODY.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\nConnection: keep-alive\r\n\r\n");
        out.extend_from_slice(POST_BODY);
    } else {
        out.extend_from_slice(b"Connection: keep-alive\r\n\r\n");
    }
}

/// A `200 OK` head announcing `body_len` bytes of HTML.
pub(crate) fn response_head(out: &mut Vec<u8>, body_len: usize) {
    out.extend_from_slice(
        b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: ",
    );
    out.extend_from_slice(body_len.to_string().as_bytes());
    out.extend_from_slice(b"\r\nCache-Control: max-age=600\r\nConnection: keep-alive\r\n\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_on_odd_port_names_it_in_host() {
        let mut out = Vec::new();
        let r = Request {
            post: false,
            host: "example.com",
            port: 8080,
            path: "/a?b=c",
            user_agent: "curl/8.5.0",
        };
        request(&mut out, &r);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(
            "GET /a?b=c HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: curl/8.5.0\r\n"
        ));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn post_carries_its_body() {
        let mut out = Vec::new();
        let r = Request {
            post: true,
            host: "h.example",
            port: 80,
            path: "/",
            user_agent: "x",
        };
        request(&mut out, &r);
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert!(head.contains("Host: h.example\r\n"));
    }
}
