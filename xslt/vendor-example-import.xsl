<?xml version="1.0" encoding="UTF-8"?>
<!-- Worked example of an http adapter's import transform: the "vcdir"
     contact format of a made-up directory service (see
     vendor-example-profile.xml and docs/operations.md, "Writing an adapter
     for a new 3rd party") into a PCC with one person-details.

     Input:  <contact xmlns="http://ns.example.com/vcdir/1"> with displayName,
             givenName, familyName, phone/@type, email, address/@type,
             organization, jobTitle, birthday (YYYY-MM-DD), photo (URL).
     Output: <pcc xmlns="urn:oma:xml:cab:pcc">, validated by xdmsd against
             schemas/cab-pcc.xsd before it is merged. -->
<xsl:stylesheet version="1.0"
                xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:v="http://ns.example.com/vcdir/1"
                xmlns="urn:oma:xml:cab:pcc"
                exclude-result-prefixes="v">
  <xsl:output method="xml" encoding="UTF-8" indent="no"/>
  <xsl:strip-space elements="*"/>
  <xsl:param name="xui"/>
  <xsl:param name="remote-user"/>

  <xsl:template match="/">
    <xsl:if test="not(v:contact)">
      <xsl:message terminate="yes">the 3rd party did not send a vcdir contact</xsl:message>
    </xsl:if>
    <xsl:apply-templates select="v:contact"/>
  </xsl:template>

  <xsl:template match="v:contact">
    <pcc pcc-type="individual">
      <person-details>
        <xsl:if test="v:displayName or v:givenName or v:familyName">
          <name>
            <name-entry pref="1">
              <xsl:for-each select="v:displayName"><display-name><xsl:value-of select="."/></display-name></xsl:for-each>
              <xsl:for-each select="v:givenName"><given><xsl:value-of select="."/></given></xsl:for-each>
              <xsl:for-each select="v:familyName"><family><xsl:value-of select="."/></family></xsl:for-each>
            </name-entry>
          </name>
        </xsl:if>
        <xsl:if test="v:phone or v:email">
          <comm-addr>
            <xsl:for-each select="v:phone">
              <tel pref="{position()}">
                <xsl:attribute name="tel-type">
                  <xsl:choose>
                    <xsl:when test="@type = 'mobile'">Mobile</xsl:when>
                    <xsl:when test="@type = 'work'">Work</xsl:when>
                    <xsl:when test="@type = 'home'">Home</xsl:when>
                    <xsl:when test="@type = 'fax'">Fax</xsl:when>
                    <xsl:otherwise>Other</xsl:otherwise>
                  </xsl:choose>
                </xsl:attribute>
                <tel-nb><tel-string>tel:<xsl:value-of select="normalize-space(.)"/></tel-string></tel-nb>
              </tel>
            </xsl:for-each>
            <xsl:for-each select="v:email">
              <uri-entry pref="{position()}" addr-uri-type="Email">
                <addr-uri>mailto:<xsl:value-of select="normalize-space(.)"/></addr-uri>
              </uri-entry>
            </xsl:for-each>
          </comm-addr>
        </xsl:if>
        <xsl:if test="v:address">
          <address>
            <xsl:for-each select="v:address">
              <address-entry pref="{position()}">
                <xsl:attribute name="address-type">
                  <xsl:choose>
                    <xsl:when test="@type = 'home'">Home</xsl:when>
                    <xsl:when test="@type = 'work'">Work</xsl:when>
                    <xsl:otherwise>Other</xsl:otherwise>
                  </xsl:choose>
                </xsl:attribute>
                <address-data><addr-string><xsl:value-of select="normalize-space(.)"/></addr-string></address-data>
              </address-entry>
            </xsl:for-each>
          </address>
        </xsl:if>
        <xsl:if test="v:birthday">
          <birth><birth-date><date><xsl:value-of select="normalize-space(v:birthday)"/></date></birth-date></birth>
        </xsl:if>
        <xsl:if test="v:organization or v:jobTitle">
          <career>
            <xsl:for-each select="v:organization"><employer><xsl:value-of select="."/></employer></xsl:for-each>
            <xsl:for-each select="v:jobTitle"><duty><xsl:value-of select="."/></duty></xsl:for-each>
          </career>
        </xsl:if>
        <xsl:if test="v:photo">
          <media-list>
            <media-entry pref="1">
              <media><media-url><xsl:value-of select="normalize-space(v:photo)"/></media-url></media>
              <label>photo</label>
            </media-entry>
          </media-list>
        </xsl:if>
      </person-details>
    </pcc>
  </xsl:template>
</xsl:stylesheet>
