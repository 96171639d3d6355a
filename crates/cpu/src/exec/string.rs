use super::Handler;
use iced_x86::Code;

pub fn lookup(code: Code) -> Option<Handler> {
    let _ = code;
    None
}
