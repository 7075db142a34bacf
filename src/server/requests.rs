//! HTTP requests the loop answers: the metrics endpoint, and the web
//! front end (the page's assets, and the WebSocket upgrade that turns the
//! connection into a chat client). What each answer is lives in
//! `crate::http` and `crate::web`; this file is the glue to the table.

use log::info;

use super::handle::Counters;
use super::Server;
use crate::conn::Reason;
use crate::http;
use crate::web::{self, Reply, Site};

impl Server {
    /// Answers a request on the metrics listener, then closes.
    pub(super) fn metrics_request(
        &mut self,
        key: usize,
        request: Result<http::Request, http::HeadError>,
    ) {
        let response = match request {
            Ok(req) if req.path != "/metrics" => http::error(404),
            Ok(req) if req.method != "GET" && req.method != "HEAD" => http::error(405),
            Ok(req) => {
                Counters::bump(&self.shared.counters.scrapes);
                self.publish_stats();
                let body = self.handle().stats().to_prometheus();
                let body = if req.method == "HEAD" {
                    ""
                } else {
                    body.as_str()
                };
                http::response(
                    200,
                    &[("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                    body.as_bytes(),
                )
            }
            Err(e) => e.response(),
        };
        self.table.send_raw(key, &response);
        self.table.drain(key, Reason::Closed);
    }

    /// Answers a request on a web listener. True when it upgraded to a
    /// WebSocket: the caller switches the codec and the client gets the
    /// prompt. Anything else is answered and closed.
    pub(super) fn web_request(
        &mut self,
        key: usize,
        request: Result<http::Request, http::HeadError>,
    ) -> bool {
        let tls = self.table.get(key).is_some_and(|c| c.is_tls());
        let site = Site {
            tls,
            allowed_origins: &self.config.allowed_origins,
        };
        let response = match web::route(request, site) {
            Reply::Upgrade(response) => {
                Counters::bump(&self.shared.counters.ws_upgrades);
                if let Some(conn) = self.table.get(key) {
                    info!("conn #{}: WebSocket from {}", conn.id(), conn.peer());
                }
                self.table.send_raw(key, &response);
                return true;
            }
            Reply::ForeignOrigin(origin, response) => {
                if let Some(conn) = self.table.get(key) {
                    info!(
                        "conn #{} ({}): WebSocket refused for origin {origin:?} (see --allowed-origin)",
                        conn.id(),
                        conn.peer()
                    );
                }
                response
            }
            Reply::Response(response) => response,
        };
        self.table.send_raw(key, &response);
        self.table.drain(key, Reason::Closed);
        false
    }
}
