def add_parser(sub):
    return []
