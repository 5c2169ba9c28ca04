"""First-party plugins. Each module is loaded through the `zoo.models` entry-point
group, exactly as a third-party plugin is; nothing imports them directly."""
