"""Redis: the key schema, the connections and the field encoding of the stores."""
