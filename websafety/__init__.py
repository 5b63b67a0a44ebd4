"""Small, pure guards shared by every layer: which hosts are private, who the client is, how
deep a JSON body may nest, what an error page may show. Imports no app of this project."""
