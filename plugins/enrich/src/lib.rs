use wraith_plugin::{Config, ConfigError, Event, Plugin, Verdict};

pub struct Skeleton;

impl Plugin for Skeleton {
    fn init(_: Config) -> Result<Self, ConfigError> {
        Ok(Skeleton)
    }

    fn process(&mut self, _: &mut Event<'_>) -> Verdict {
        Verdict::Keep
    }
}

wraith_plugin::export!(Skeleton);
