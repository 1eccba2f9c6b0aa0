//! A tiny HTTP/1.1 server on 127.0.0.1 for CLI tests: fixed answers by path, one request
//! per connection, on a background thread. Nothing here leaves the loopback interface.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

/// Status line and body served for one path.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: &'static str,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn ok(body: impl Into<Vec<u8>>) -> Self {
        Reply {
            status: "200 OK",
            body: body.into(),
        }
    }
    pub(crate) fn status(status: &'static str) -> Self {
        Reply {
            status,
            body: Vec::new(),
        }
    }
}

/// A running server; it lives as long as the test process.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) base: String,
}

impl Server {
    /// Serve `routes` (by path, query ignored); any other path is a 404.
    pub(crate) fn start(routes: Vec<(&str, Reply)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes: Arc<HashMap<String, Reply>> = Arc::new(
            routes
                .into_iter()
                .map(|(p, r)| (p.to_string(), r))
                .collect(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let routes = Arc::clone(&routes);
                std::thread::spawn(move || answer(stream, &routes));
            }
        });
        Server { base }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

fn answer(mut stream: TcpStream, routes: &HashMap<String, Reply>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    // Routes are by path; a query string (an API key in a test URL) is ignored.
    let target = text.split(' ').nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or(target);
    let not_found = Reply::status("404 Not Found");
    let reply = routes.get(path).unwrap_or(&not_found);
    let header = format!(
        "HTTP/1.1 {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reply.body.len()
    );
    let _ = stream.write_all(header.as_bytes());
    let _ = stream.write_all(&reply.body);
}
