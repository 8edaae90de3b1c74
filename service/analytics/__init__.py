"""Browse vs buy: sightings from /identify, sales from the till, and the reports joining them."""
